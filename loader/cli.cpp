// sockmesh-loader argument parsing; see cli.h.
#include "cli.h"

#include <charconv>
#include <map>

#include "sockmesh/net.h"
#include "system.h"

namespace sm::cli {
namespace {

const char* const kUsage =
    R"(usage: sockmesh-loader [-v] <command> [flags]

commands:
  install    [--cgroup PATH] [--pin-dir DIR] [--no-splice]
             load, pin and attach the programs (rerun: no-op or atomic upgrade; a rerun
             keeps the splice setting unless --no-splice is given)
  uninstall  [--pin-dir DIR] [--cni-bin-dir DIR --cni-conf-dir DIR]
             remove every link, program and pin (and sockmesh-cni from the CNI config)
  status     [--json] [--pin-dir DIR] programs, links, maps, workloads, counters
  enroll     --netns PATH | --pid PID [--mode ebpf|iptables] [--pin-dir DIR]
             [--outbound-port 15001] [--inbound-port 15006]
             [--proxy-uid 1337] [--proxy-gid G (default: the uid)]
             [--exclude-outbound-ports L] [--exclude-inbound-ports L]
             [--exclude-cidrs L] [--include-cidrs L] [--splice-app] [--fail-open]
             CIDR lists take IPv4 and IPv6 prefixes; --splice-app lets the app's own
             sockets be spliced (only for programs with non-blocking I/O and no splice(2));
             --fail-open (ebpf only): connects go direct while no sidecar listens
             (default: fail closed, ECONNREFUSED, as Istio's iptables REDIRECT)
  unenroll   --netns PATH | --pid PID | --netns-cookie N [--mode ebpf|iptables] [--pin-dir DIR]
  splice     on|off [--pin-dir DIR]   switch socket splicing on a running install
  agent      [--status-file PATH] [--interval S] [--cgroup PATH] [--pin-dir DIR]
             [--cni-bin-dir DIR --cni-conf-dir DIR [--cni-plugin PATH]] [enroll flags]
             node agent: installs, re-checks and repairs the install every S seconds
             (1..10, default 5), unenrolls workloads whose netns is gone, writes the
             status file (first line "ready" when healthy; default
             /run/sockmesh/agent.status); with the CNI dirs, installs sockmesh-cni and
             chains it into the first conflist, with the enroll flags as its settings.
             SIGTERM leaves everything attached (uninstall is explicit)

defaults: --cgroup is the cgroup v2 root, --pin-dir is /sys/fs/bpf/sockmesh.
)";

Error flag_error(const std::string& verb, const std::string& msg) {
  return plain_error(verb + ": " + msg);
}

// The flags each subcommand accepts; true when the flag takes a value.
const std::map<Verb, std::map<std::string, bool>>& accepted() {
  static const std::map<std::string, bool> enroll_flags = {{"--pin-dir", true},
                                                           {"--netns", true},
                                                           {"--pid", true},
                                                           {"--mode", true},
                                                           {"--outbound-port", true},
                                                           {"--inbound-port", true},
                                                           {"--proxy-uid", true},
                                                           {"--proxy-gid", true},
                                                           {"--exclude-outbound-ports", true},
                                                           {"--exclude-inbound-ports", true},
                                                           {"--exclude-cidrs", true},
                                                           {"--include-cidrs", true},
                                                           {"--splice-app", false},
                                                           {"--fail-open", false}};
  static const auto agent_flags = [] {
    auto f = enroll_flags;
    f.erase("--netns");
    f.erase("--pid");
    for (const char* v : {"--status-file", "--interval", "--cgroup", "--cni-bin-dir",
                          "--cni-conf-dir", "--cni-plugin"})
      f[v] = true;
    return f;
  };
  static const std::map<Verb, std::map<std::string, bool>> m = {
      {Verb::install, {{"--pin-dir", true}, {"--cgroup", true}, {"--no-splice", false}}},
      {Verb::uninstall, {{"--pin-dir", true}, {"--cni-bin-dir", true}, {"--cni-conf-dir", true}}},
      {Verb::status, {{"--pin-dir", true}, {"--json", false}}},
      {Verb::enroll, enroll_flags},
      {Verb::unenroll,
       {{"--pin-dir", true},
        {"--netns", true},
        {"--pid", true},
        {"--mode", true},
        {"--netns-cookie", true}}},
      {Verb::splice, {{"--pin-dir", true}}},
      {Verb::agent, agent_flags()},
  };
  return m;
}

Status apply_flag(Command& c, const std::string& verb, const std::string& flag,
                  const std::string& v) {
  auto port = [&](uint16_t& out) -> Status {
    auto p = parse_port(v, flag);
    if (!p) return p.error();
    out = *p;
    return {};
  };
  auto ports = [&](std::vector<uint16_t>& out) -> Status {
    auto p = parse_port_list(v, flag);
    if (!p) return p.error();
    out = *p;
    return {};
  };
  auto cidrs = [&](std::vector<IpCidr>& out) -> Status {
    auto p = parse_cidr_list(v, flag);
    if (!p) return p.error();
    out = *p;
    return {};
  };
  WorkloadSettings& s = c.settings;
  if (flag == "--pin-dir") {
    if (v.empty() || v[0] != '/')
      return plain_error("--pin-dir: '" + v + "': needs an absolute path");
    c.pins.dir = v;
    while (c.pins.dir.size() > 1 && c.pins.dir.back() == '/') c.pins.dir.pop_back();
  } else if (flag == "--cgroup") {
    if (v.empty()) return plain_error("--cgroup: needs a path");
    c.cgroup = v;
  } else if (flag == "--status-file" || flag == "--cni-bin-dir" || flag == "--cni-conf-dir" ||
             flag == "--cni-plugin") {
    if (v.empty() || v[0] != '/')
      return plain_error(flag + ": '" + v + "': needs an absolute path");
    (flag == "--status-file"    ? c.status_file
     : flag == "--cni-bin-dir"  ? c.cni_bin_dir
     : flag == "--cni-conf-dir" ? c.cni_conf_dir
                                : c.cni_plugin) = v;
  } else if (flag == "--interval") {
    auto n = parse_u32(v, flag);
    if (!n || *n < 1 || *n > 10)
      return plain_error("--interval: '" + v +
                         "': must be 1..10 seconds (the status file is "
                         "rewritten at least every 10 s)");
    c.interval_seconds = static_cast<int>(*n);
  } else if (flag == "--no-splice") {
    c.splice = false;
  } else if (flag == "--splice-app") {
    s.splice_app = true;
  } else if (flag == "--fail-open") {
    s.fail_open = true;
  } else if (flag == "--json") {
    c.json = true;
  } else if (flag == "--netns") {
    if (v.empty()) return plain_error("--netns: needs a path");
    if (!c.netns_path.empty()) return flag_error(verb, "give only one of --netns, --pid");
    c.netns_path = v;
  } else if (flag == "--pid") {
    auto pid = parse_u32(v, "--pid");
    if (!pid || *pid == 0) return plain_error("--pid: '" + v + "': not a process id");
    if (!c.netns_path.empty()) return flag_error(verb, "give only one of --netns, --pid");
    c.netns_path = host::netns_path_of_pid(static_cast<int>(*pid));
  } else if (flag == "--netns-cookie") {
    uint64_t cookie = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), cookie);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || cookie == 0)
      return plain_error("--netns-cookie: '" + v + "': not a netns cookie");
    c.netns_cookie = cookie;
  } else if (flag == "--mode") {
    if (v == "ebpf")
      c.mode = Mode::ebpf;
    else if (v == "iptables")
      c.mode = Mode::iptables;
    else
      return plain_error("--mode: '" + v + "': must be ebpf or iptables");
  } else if (flag == "--outbound-port") {
    return port(s.outbound_port);
  } else if (flag == "--inbound-port") {
    return port(s.inbound_port);
  } else if (flag == "--proxy-uid" || flag == "--proxy-gid") {
    auto id = parse_u32(v, flag);
    if (!id) return id.error();
    if (flag == "--proxy-uid")
      s.proxy_uid = *id;
    else
      s.proxy_gid = *id;
  } else if (flag == "--exclude-outbound-ports") {
    return ports(s.exclude_outbound_ports);
  } else if (flag == "--exclude-inbound-ports") {
    return ports(s.exclude_inbound_ports);
  } else if (flag == "--exclude-cidrs") {
    return cidrs(s.exclude_cidrs);
  } else if (flag == "--include-cidrs") {
    return cidrs(s.include_cidrs);
  }
  return {};
}

}  // namespace

const char* usage() {
  return kUsage;
}

Result<Command> parse(const std::vector<std::string>& args) {
  Command c;
  size_t i = 0;
  while (i < args.size() && (args[i] == "-v" || args[i] == "--verbose")) {
    c.verbose = true;
    ++i;
  }
  if (i == args.size() || args[i] == "-h" || args[i] == "--help" || args[i] == "help") return c;
  static const std::map<std::string, Verb> verbs = {
      {"install", Verb::install}, {"uninstall", Verb::uninstall}, {"status", Verb::status},
      {"enroll", Verb::enroll},   {"unenroll", Verb::unenroll},   {"splice", Verb::splice},
      {"agent", Verb::agent}};
  const std::string verb = args[i++];
  auto vit = verbs.find(verb);
  if (vit == verbs.end())
    return plain_error("unknown command '" + verb + "' (see sockmesh-loader --help)");
  c.verb = vit->second;
  const auto& flags = accepted().at(c.verb);

  bool splice_arg_seen = false;
  for (; i < args.size(); ++i) {
    std::string a = args[i], value;
    if (c.verb == Verb::splice && (a == "on" || a == "off")) {
      if (splice_arg_seen) return flag_error(verb, "give on or off once");
      c.splice = a == "on";
      splice_arg_seen = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) return flag_error(verb, "unexpected argument '" + a + "'");
    size_t eq = a.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto fit = flags.find(a);
    if (fit == flags.end()) return flag_error(verb, "unknown flag " + a);
    if (fit->second && !inline_value) {
      if (i + 1 >= args.size()) return plain_error(a + ": missing value");
      value = args[++i];
    } else if (!fit->second && inline_value) {
      return plain_error(a + ": takes no value");
    }
    if (Status s = apply_flag(c, verb, a, value); !s) return s.error();
  }

  if (c.verb == Verb::splice && !splice_arg_seen) return flag_error(verb, "say on or off");
  if (c.verb == Verb::enroll) {
    if (c.netns_path.empty()) return flag_error(verb, "needs --netns PATH or --pid PID");
    // iptables' REDIRECT cannot ask whether the sidecar listens (Istio has no fail-open
    // mode either): refusing beats enrolling a workload that silently fails closed.
    if (c.settings.fail_open && c.mode == Mode::iptables)
      return flag_error(verb,
                        "--fail-open works only with --mode ebpf (iptables REDIRECT cannot "
                        "tell whether the sidecar listens; Istio has no fail-open mode)");
    if (Status s = c.settings.validate(); !s) return s.error();
  }
  if (c.verb == Verb::agent || c.verb == Verb::uninstall) {
    if (c.cni_bin_dir.empty() != c.cni_conf_dir.empty())
      return flag_error(verb, "give both --cni-bin-dir and --cni-conf-dir, or neither");
    if (c.settings.fail_open && c.mode == Mode::iptables)  // as enroll: see there
      return flag_error(verb, "--fail-open works only with --mode ebpf");
    if (Status s = c.settings.validate(); !s) return s.error();
  }
  if (c.verb == Verb::unenroll) {
    int given = !c.netns_path.empty() + c.netns_cookie.has_value();
    if (given != 1)
      return flag_error(verb, "needs one of --netns PATH, --pid PID, --netns-cookie N");
    if (c.netns_cookie && c.mode == Mode::iptables)
      return flag_error(verb, "--netns-cookie works only with --mode ebpf");
  }
  return c;
}

}  // namespace sm::cli
