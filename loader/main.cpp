// sockmesh-loader: installs sockmesh's BPF programs and enrolls workloads. Exit codes:
// 0 success, 1 failure (one line on stderr saying what and why), 2 bad usage.
#include <cstdio>
#include <iostream>

#include "agent.h"
#include "chain.h"
#include "cli.h"
#include "iptables.h"
#include "mesh.h"
#include "sockmesh/log.h"
#include "status.h"

namespace {

using namespace sm;

int fail(const Error& e) {
  std::fprintf(stderr, "sockmesh-loader: %s\n", e.message().c_str());
  return 1;
}

int run_install(const cli::Command& c) {
  auto r = install(InstallOptions{c.cgroup, c.pins, c.splice});
  if (!r) return fail(r.error());
  std::printf("installed at %s (cgroup %s, splice %s)\n", c.pins.dir.c_str(), r->cgroup.c_str(),
              r->splice ? "on" : "off");
  if (!r->probe.empty())
    std::printf("  app sockets: %s (%s)\n",
                r->app_splice_safe ? "spliced (this kernel is safe)"
                                   : "spliced only for workloads enrolled with --splice-app",
                r->probe.c_str());
  for (const auto& [name, change] : r->links)
    std::printf("  %-28s %s\n", name.c_str(), bpf::to_string(change));
  return 0;
}

int run_uninstall(const cli::Command& c) {
  if (!c.cni_conf_dir.empty()) {
    std::vector<std::string> events;
    Status s = cni::uninstall_chain(c.cni_bin_dir, c.cni_conf_dir, events);
    for (const auto& e : events) std::printf("%s\n", e.c_str());
    if (!s) return fail(s.error());
  }
  auto r = uninstall(c.pins);
  if (!r) return fail(r.error());
  std::printf(*r ? "uninstalled %s\n" : "nothing installed at %s\n", c.pins.dir.c_str());
  return 0;
}

int run_status(const cli::Command& c) {
  auto s = collect_status(c.pins);
  if (!s) return fail(s.error());
  if (c.json)
    std::cout << s->dump(2) << "\n";
  else
    std::cout << render_status_text(*s);
  return 0;
}

int run_enroll(const cli::Command& c) {
  if (Status s = host::require_privileges("enroll"); !s) return fail(s.error());
  auto ns = host::open_netns(c.netns_path);
  if (!ns) return fail(ns.error());
  if (c.mode == cli::Mode::iptables) {
    if (Status s = iptables::enroll(*ns, c.settings); !s) return fail(s.error());
  } else {
    auto mesh = Mesh::open(c.pins);
    if (!mesh) return fail(mesh.error());
    if (Status s = mesh->enroll(*ns, c.settings); !s) return fail(s.error());
  }
  std::printf("enrolled %s (netns cookie %llu, inode %llu, mode %s)\n", c.netns_path.c_str(),
              static_cast<unsigned long long>(ns->cookie),
              static_cast<unsigned long long>(ns->inode),
              c.mode == cli::Mode::iptables ? "iptables" : "ebpf");
  return 0;
}

int run_unenroll(const cli::Command& c) {
  if (Status s = host::require_privileges("unenroll"); !s) return fail(s.error());
  uint64_t cookie = c.netns_cookie.value_or(0);
  std::optional<host::Netns> ns;
  if (!c.netns_path.empty()) {
    auto opened = host::open_netns(c.netns_path);
    if (!opened) return fail(opened.error());
    cookie = opened->cookie;
    ns = std::move(*opened);
  }
  Result<bool> was = false;
  if (c.mode == cli::Mode::iptables) {
    was = iptables::unenroll(*ns);
  } else {
    auto mesh = Mesh::open(c.pins);
    if (!mesh) return fail(mesh.error());
    was = mesh->unenroll(cookie);
  }
  if (!was) return fail(was.error());
  std::printf(*was ? "unenrolled netns cookie %llu\n" : "netns cookie %llu was not enrolled\n",
              static_cast<unsigned long long>(cookie));
  return 0;
}

int run_splice(const cli::Command& c) {
  if (Status s = host::require_privileges("splice"); !s) return fail(s.error());
  auto mesh = Mesh::open(c.pins);
  if (!mesh) return fail(mesh.error());
  if (Status s = mesh->set_splice(*c.splice); !s) return fail(s.error());
  std::printf("splice %s\n", *c.splice ? "on" : "off");
  return 0;
}

int run_agent_cmd(const cli::Command& c) {
  if (Status s = host::require_privileges("agent"); !s) return fail(s.error());
  AgentOptions opts;
  opts.install = InstallOptions{c.cgroup, c.pins, c.splice};
  opts.status_file = c.status_file;
  opts.interval_seconds = c.interval_seconds;
  if (!c.cni_conf_dir.empty()) {
    cni::ChainSpec spec{
        c.cni_plugin, c.cni_bin_dir, c.cni_conf_dir,
        cni::plugin_entry(c.pins.dir,
                          c.mode == cli::Mode::iptables ? cni::Mode::iptables : cni::Mode::ebpf,
                          c.settings)};
    opts.extra = [spec](std::vector<std::string>& events) {
      return cni::install_chain(spec, events);
    };
  }
  return run_agent(opts);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cmd = sm::cli::parse(args);
  if (!cmd) {
    std::fprintf(stderr, "sockmesh-loader: %s\n", cmd.error().message().c_str());
    return 2;
  }
  if (cmd->verbose) sm::log::set_threshold(sm::log::Level::debug);
  switch (cmd->verb) {
    case sm::cli::Verb::help:
      std::fputs(sm::cli::usage(), stdout);
      return 0;
    case sm::cli::Verb::install:
      return run_install(*cmd);
    case sm::cli::Verb::uninstall:
      return run_uninstall(*cmd);
    case sm::cli::Verb::status:
      return run_status(*cmd);
    case sm::cli::Verb::enroll:
      return run_enroll(*cmd);
    case sm::cli::Verb::unenroll:
      return run_unenroll(*cmd);
    case sm::cli::Verb::splice:
      return run_splice(*cmd);
    case sm::cli::Verb::agent:
      return run_agent_cmd(*cmd);
  }
  return 2;
}
