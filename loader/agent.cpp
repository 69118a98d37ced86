// The node agent's passes and loop; see agent.h.
#include "agent.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>

#include "sockmesh/log.h"

namespace sm {
namespace {

// The links of an install besides the per-netns sk_lookup ones.
std::vector<std::string> install_links() {
  std::vector<std::string> out{kSkMsgLink};
  for (const auto& p : kCgroupPrograms) out.emplace_back(p.link);
  return out;
}

// A pinned link whose target went away (`bpftool link detach`, a removed cgroup) stays
// pinned but does nothing; the kernel then reports no target.
bool detached(const bpf::LinkInfo& li) {
  if (li.type == bpf::kSockmapLinkType) return li.map_id == 0;
  if (li.type == BPF_LINK_TYPE_CGROUP) return li.cgroup_id == 0;
  return false;
}

bool map_pinned(const PinLayout& pins, const char* name) {
  return host::path_exists(pins.map(name));
}

// A map whose pin was removed still lives while an attached program uses it: pin it
// again, so the workloads and sockets it holds are kept (a new map would start empty).
std::vector<std::string> restore_map_pins(const PinLayout& pins) {
  std::vector<std::string> events;
  for (const auto& link : install_links()) {
    int fd = bpf_obj_get(pins.link(link).c_str());
    if (fd < 0) continue;
    UniqueFd l(fd);
    auto li = bpf::link_info(fd);
    if (!li) continue;
    auto prog = bpf::prog_info_by_id(li->prog_id);
    if (!prog) continue;
    for (uint32_t id : prog->map_ids) {
      int mfd = bpf_map_get_fd_by_id(id);
      if (mfd < 0) continue;
      UniqueFd m(mfd);
      auto mi = bpf::map_info(mfd);
      if (!mi) continue;
      for (const char* name : kMapNames) {
        if (mi->name != name || map_pinned(pins, name)) continue;
        if (bpf_obj_pin(mfd, pins.map(name).c_str()) == 0)
          events.push_back(std::string("map ") + name + " was unpinned: pinned again (id " +
                           std::to_string(id) + ", contents kept)");
      }
    }
  }
  return events;
}

// Unpins detached links so install() creates them again.
std::vector<std::string> drop_detached_links(const PinLayout& pins) {
  std::vector<std::string> events;
  for (const auto& link : install_links()) {
    int fd = bpf_obj_get(pins.link(link).c_str());
    if (fd < 0) continue;
    UniqueFd l(fd);
    auto li = bpf::link_info(fd);
    if (li && detached(*li) && ::unlink(pins.link(link).c_str()) == 0)
      events.push_back("link " + link + " was detached: unpinned for re-attach");
  }
  return events;
}

std::string utc_now() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

std::vector<std::string> inspect_install(const PinLayout& pins) {
  std::vector<std::string> problems;
  for (const char* name : kMapNames)
    if (!map_pinned(pins, name)) problems.push_back(std::string("map ") + name + " is not pinned");
  for (const auto& link : install_links()) {
    int fd = bpf_obj_get(pins.link(link).c_str());
    if (fd < 0) {
      problems.push_back("link " + link + " is not pinned");
      continue;
    }
    UniqueFd l(fd);
    auto li = bpf::link_info(fd);
    if (!li)
      problems.push_back("link " + link + ": " + li.error().message());
    else if (detached(*li))
      problems.push_back("link " + link + " is detached");
  }
  return problems;
}

AgentPass agent_pass(const AgentOptions& opts, bool first) {
  AgentPass pass;
  const PinLayout& pins = opts.install.pins;
  std::vector<std::string> problems = inspect_install(pins);
  if (first || !problems.empty()) {
    for (const auto& p : problems)
      if (!first) pass.events.push_back("repairing: " + p);
    append(pass.events, restore_map_pins(pins));
    append(pass.events, drop_detached_links(pins));
    auto r = install(opts.install);
    if (!r) {
      pass.reason = "install: " + r.error().message();
      return pass;
    }
    for (const auto& [name, change] : r->links)
      if (change != bpf::LinkChange::unchanged)
        pass.events.push_back("link " + name + " " + bpf::to_string(change));
  }
  auto mesh = Mesh::open(pins);
  if (!mesh) {
    pass.reason = mesh.error().message();
    return pass;
  }
  auto gone = mesh->collect_gone();
  if (!gone) {
    pass.reason = "collect: " + gone.error().message();
    return pass;
  }
  for (uint64_t c : *gone)
    pass.events.push_back("netns cookie " + std::to_string(c) + " is gone: unenrolled");
  auto wls = mesh->store().workloads();
  if (wls) pass.workloads = wls->size();
  if (opts.extra) {
    if (Status s = opts.extra(pass.events); !s) {
      pass.reason = s.error().message();
      return pass;
    }
  }
  problems = inspect_install(pins);
  if (!problems.empty()) {
    pass.reason = problems.front();
    return pass;
  }
  pass.ready = true;
  return pass;
}

Status write_agent_status(const std::string& path, const std::string& first_line,
                          const std::vector<std::string>& details) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    if (Status s = host::mkdir_p(path.substr(0, slash)); !s) return s;
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return errno_error("--status-file " + tmp);
    f << first_line << "\n";
    for (const auto& d : details) f << d << "\n";
    f.flush();
    if (!f) return errno_error("write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("rename " + tmp + " " + path);
  return {};
}

int run_agent(const AgentOptions& opts) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  // Blocked, then taken synchronously between passes: a pass is never cut in half.
  sigprocmask(SIG_BLOCK, &stop, nullptr);

  const PinLayout& pins = opts.install.pins;
  if (Status s = write_agent_status(opts.status_file, "starting", {"since " + utc_now()}); !s) {
    SM_ERROR("agent: %s", s.error().message().c_str());
    return 1;
  }
  SM_INFO("agent: pin dir %s, status file %s, every %d s", pins.dir.c_str(),
          opts.status_file.c_str(), opts.interval_seconds);
  bool first = true;
  std::string last_reason;
  for (;;) {
    AgentPass pass = agent_pass(opts, first);
    for (const auto& e : pass.events) SM_INFO("agent: %s", e.c_str());
    if (!pass.ready && pass.reason != last_reason)
      SM_WARN("agent: degraded: %s", pass.reason.c_str());
    else if (pass.ready && (first || !last_reason.empty()))
      SM_INFO("agent: ready (%zu workloads)", pass.workloads);
    last_reason = pass.ready ? "" : pass.reason;
    first = false;

    std::vector<std::string> details = {"time " + utc_now(), "pin-dir " + pins.dir,
                                        "workloads " + std::to_string(pass.workloads)};
    for (const auto& e : pass.events) details.push_back("event " + e);
    std::string head = pass.ready ? "ready" : "degraded: " + pass.reason;
    if (Status s = write_agent_status(opts.status_file, head, details); !s)
      SM_ERROR("agent: %s", s.error().message().c_str());

    timespec ts{opts.interval_seconds, 0};
    siginfo_t info{};
    int sig = sigtimedwait(&stop, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      SM_INFO("agent: %s: exiting; programs stay attached (pinned at %s)",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", pins.dir.c_str());
      (void)write_agent_status(opts.status_file, "stopped",
                               {"time " + utc_now(), "programs stay attached at " + pins.dir});
      return 0;
    }
  }
}

}  // namespace sm
