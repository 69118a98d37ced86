// sockmesh-proxy: the sidecar. Loads the route table, binds the listeners (one per
// worker, SO_REUSEPORT) and the admin API, drops privileges, runs one worker per thread on
// io_uring or, where that is blocked, epoll (event_loop.h). The control plane (control.h)
// keeps the table: from Consul and Istio rules, or --config; SIGHUP re-reads --config or the
// rule files; SIGTERM drains, then exits; a second SIGTERM or SIGINT exits at once
// (proxy/lifecycle.h). --restart-epoch N takes the sockets over from epoch N-1
// (proxy/hot_restart.h).
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "proxy/admin.h"
#include "proxy/control.h"
#include "proxy/event_loop.h"
#include "proxy/hot_restart.h"
#include "proxy/lifecycle.h"
#include "proxy/options.h"
#include "proxy/shared.h"
#include "proxy/sockets.h"
#include "proxy/worker.h"
#include "route/config_json.h"
#include "sockmesh/log.h"
#include "sockmesh/unique_fd.h"
#include "tracing/http_post.h"

namespace {

using namespace sm;
using namespace sm::proxy;

Status drop_privileges(const Options& o) {
  if (!o.uid && !o.gid) return {};
  uid_t uid = o.uid.value_or(::getuid());
  gid_t gid = o.gid.value_or(o.uid.value_or(::getgid()));
  if (::geteuid() != 0) {
    if (uid == ::geteuid() && gid == ::getegid()) return {};
    return plain_error("--uid/--gid: only root can change to another user");
  }
  if (::setgroups(0, nullptr) != 0) return errno_error("setgroups");
  if (::setgid(gid) != 0) return errno_error("--gid " + std::to_string(gid));
  if (::setuid(uid) != 0) return errno_error("--uid " + std::to_string(uid));
  return {};
}

int fail(const Error& e) {
  std::fprintf(stderr, "sockmesh-proxy: %s\n", e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args)
    if (a == "-h" || a == "--help") {
      std::fputs(proxy::usage(), stdout);
      return 0;
    }
  auto opts = proxy::parse_options(args);
  if (!opts) {
    std::fprintf(stderr, "sockmesh-proxy: %s\n", opts.error().message().c_str());
    return 2;
  }
  if (opts->verbose) log::set_threshold(log::Level::debug);

  // Signals are taken by sigwait in the main thread; workers inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto control_opts = ControlOptions::from(*opts, std::getenv("CONSUL_HTTP_ADDR"),
                                           std::getenv("CONSUL_HTTP_TOKEN"));
  if (!control_opts) return fail(control_opts.error());
  Shared shared(*opts);
  Control control(shared, std::move(*control_opts));
  if (Status s = control.load_initial(); !s) return fail(s.error());

  // Bind everything while still privileged (or take it over from the running proxy, for a
  // hot restart), then drop.
  std::vector<UniqueFd> out_fds, in_fds;
  Admin admin(shared);
  std::optional<Handover> parent;
  if (opts->restart_epoch > 0) {
    auto h = take_over(*opts, opts->uid.value_or(::geteuid()));
    if (!h) return fail(h.error());
    parent = std::move(*h);
    out_fds = std::move(parent->outbound);
    in_fds = std::move(parent->inbound);
    shared.earlier_epochs_uptime_ms = parent->uptime_ms;
    // Every socket handed over must have a worker accepting on it.
    if (out_fds.size() > opts->workers) {
      SM_INFO("sockmesh-proxy: %zu workers, as many as the proxy of epoch %u had", out_fds.size(),
              opts->restart_epoch - 1);
      opts->workers = static_cast<uint32_t>(out_fds.size());
    }
    if (Status s = admin.start(std::move(parent->admin)); !s) return fail(s.error());
  }
  while (out_fds.size() < opts->workers) {
    auto o = open_listener(opts->outbound_port, "--outbound-port");
    if (!o) return fail(o.error());
    auto n = open_listener(opts->inbound_port, "--inbound-port");
    if (!n) return fail(n.error());
    out_fds.push_back(std::move(*o));
    in_fds.push_back(std::move(*n));
  }
  if (!parent)
    if (Status s = admin.start(opts->admin_address, opts->admin_port); !s) return fail(s.error());
  if (Status s = drop_privileges(*opts); !s) return fail(s.error());
  // As the proxy's own user: the log file is its, and no path trick makes root write.
  if (Status s = shared.access_log.open(opts->access_log); !s) return fail(s.error());

  // After dropping privileges: kernel.io_uring_disabled = 1 allows io_uring to root only.
  std::string loop_note;
  auto loop = choose_event_loop(opts->event_loop, &loop_note);
  if (!loop) return fail(loop.error());
  shared.event_loop = *loop;
  if (!loop_note.empty()) SM_WARN("sockmesh-proxy: event loop epoll: %s", loop_note.c_str());

  if (!opts->zipkin_address.empty()) {
    auto collector = tracing::parse_host_port(opts->zipkin_address);
    if (!collector) return fail(collector.error());
    tracing::ReporterConfig rc;
    rc.collector = *collector;
    shared.zipkin = std::make_unique<tracing::Reporter>(std::move(rc));
    tracing::TracerConfig tc;
    tc.service_name = opts->service_cluster.empty() ? "sockmesh-proxy" : opts->service_cluster;
    tc.node_id = tc.service_name;
    tc.sampling_percent = opts->trace_sampling;
    shared.tracer = std::make_unique<const tracing::Tracer>(std::move(tc), shared.zipkin.get());
  }
  control.start();

  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (uint32_t i = 0; i < opts->workers; ++i) {
    threads.emplace_back([&, i] {
      Worker w(shared, i, out_fds[i].get(), in_fds[i].get());
      if (Status s = w.init(); !s) {
        SM_ERROR("worker %u: %s", i, s.error().message().c_str());
        failed = 1;
        shared.stop = true;
        return;
      }
      w.run();
    });
  }
  SM_INFO("sockmesh-proxy: %u workers (%s), outbound :%u, inbound :%u, admin %s%s", opts->workers,
          event_loop_name(*loop), opts->outbound_port, opts->inbound_port,
          endpoint_str(opts->admin_address, opts->admin_port).c_str(),
          opts->config_path.empty() ? "" : (", routes from " + opts->config_path).c_str());

  Lifecycle life(shared, control, admin, out_fds, in_fds);
  if (parent) {
    // LIVE first (every worker runs), then the parent lets go.
    while (shared.workers_running.load() < opts->workers && !shared.stop.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (Status s = drain_parent(*parent); !s)
      SM_WARN("sockmesh-proxy: telling the proxy of epoch %u to drain: %s", opts->restart_epoch - 1,
              s.error().message().c_str());
    else
      life.follow_parent(std::move(parent->conn));
  }
  if (Status s = life.listen_for_next_epoch(); !s)
    SM_WARN("sockmesh-proxy: no hot restart from this process: %s", s.error().message().c_str());
  life.run(sigs);

  shared.stop = true;
  control.stop();
  for (auto& t : threads) t.join();
  life.hand_over_counters();
  admin.stop();
  return failed ? 1 : 0;
}
