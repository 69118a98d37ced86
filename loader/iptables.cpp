// iptables rendering and application; see iptables.h.
#include "iptables.h"

#include <sstream>

namespace sm::iptables {
namespace {

constexpr const char* kChains[] = {"SOCKMESH_INBOUND", "SOCKMESH_IN_REDIRECT", "SOCKMESH_OUTPUT",
                                   "SOCKMESH_REDIRECT"};

std::string comment(const char* what) {
  return std::string(" -m comment --comment \"sockmesh/") + what + "\"";
}

Result<std::string> run(const host::Netns& ns, const std::vector<std::string>& argv,
                        const std::string& input) {
  std::string out;
  auto rc = host::run_in_netns(ns, argv, input, &out);
  if (!rc) return rc.error();
  if (*rc != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return plain_error(argv[0] + " in " + ns.path + " failed: " + out);
  }
  return out;
}

}  // namespace

std::string render_rules(const WorkloadSettings& s, int family) {
  const bool v6 = family == AF_INET6;
  const std::string loopback = v6 ? "::1/128" : "127.0.0.0/8";
  auto same_family = [&](const IpCidr& c) { return c.is_v4() != v6; };
  std::ostringstream r;
  const std::string in_port = std::to_string(s.inbound_port);
  const std::string out_port = std::to_string(s.outbound_port);
  r << "*nat\n";
  for (const char* c : kChains) r << ':' << c << " - [0:0]\n";
  r << "-A PREROUTING -p tcp" << comment("inbound") << " -j SOCKMESH_INBOUND\n";
  r << "-A OUTPUT -p tcp" << comment("outbound") << " -j SOCKMESH_OUTPUT\n";

  // Inbound: never loopback, never the sidecar's own ports, never excluded ports.
  r << "-A SOCKMESH_INBOUND -d " << loopback << comment("bypass-loopback") << " -j RETURN\n";
  r << "-A SOCKMESH_INBOUND -s " << loopback << comment("bypass-loopback") << " -j RETURN\n";
  r << "-A SOCKMESH_INBOUND -p tcp --dport " << in_port << comment("bypass-sidecar")
    << " -j RETURN\n";
  r << "-A SOCKMESH_INBOUND -p tcp --dport " << out_port << comment("bypass-sidecar")
    << " -j RETURN\n";
  for (uint16_t p : s.exclude_inbound_ports)
    r << "-A SOCKMESH_INBOUND -p tcp --dport " << p << comment("exclude-inbound-port")
      << " -j RETURN\n";
  r << "-A SOCKMESH_INBOUND -p tcp" << comment("redirect-inbound") << " -j SOCKMESH_IN_REDIRECT\n";
  r << "-A SOCKMESH_IN_REDIRECT -p tcp" << comment("to-inbound-port") << " -j REDIRECT --to-ports "
    << in_port << "\n";

  // Outbound: the proxy's own traffic, loopback, excluded ports and CIDRs go direct.
  r << "-A SOCKMESH_OUTPUT -m owner --uid-owner " << s.proxy_uid << comment("bypass-proxy-uid")
    << " -j RETURN\n";
  r << "-A SOCKMESH_OUTPUT -m owner --gid-owner " << s.gid() << comment("bypass-proxy-gid")
    << " -j RETURN\n";
  r << "-A SOCKMESH_OUTPUT -d " << loopback << comment("bypass-loopback") << " -j RETURN\n";
  for (uint16_t p : s.exclude_outbound_ports)
    r << "-A SOCKMESH_OUTPUT -p tcp --dport " << p << comment("exclude-outbound-port")
      << " -j RETURN\n";
  for (const IpCidr& c : s.exclude_cidrs)
    if (same_family(c))
      r << "-A SOCKMESH_OUTPUT -d " << c.str() << comment("exclude-cidr") << " -j RETURN\n";
  if (s.restricts_includes()) {
    for (const IpCidr& c : s.include_cidrs)
      if (same_family(c))
        r << "-A SOCKMESH_OUTPUT -d " << c.str() << comment("include-cidr")
          << " -j SOCKMESH_REDIRECT\n";
    r << "-A SOCKMESH_OUTPUT" << comment("outside-include-cidrs") << " -j RETURN\n";
  } else {
    r << "-A SOCKMESH_OUTPUT" << comment("redirect-outbound") << " -j SOCKMESH_REDIRECT\n";
  }
  r << "-A SOCKMESH_REDIRECT -p tcp" << comment("to-outbound-port") << " -j REDIRECT --to-ports "
    << out_port << "\n";
  r << "COMMIT\n";
  return r.str();
}

std::string render_teardown(const std::string& save) {
  std::istringstream in(save);
  std::string line, jumps, chains;
  while (std::getline(in, line)) {
    // Jumps from the built-in chains into ours: "-A OUTPUT ... -j SOCKMESH_OUTPUT".
    if (line.rfind("-A PREROUTING ", 0) == 0 || line.rfind("-A OUTPUT ", 0) == 0) {
      if (line.find("-j SOCKMESH_") != std::string::npos) jumps += "-D" + line.substr(2) + "\n";
    } else if (line.rfind(":SOCKMESH_", 0) == 0) {
      std::string chain = line.substr(1, line.find(' ') - 1);
      chains += "-F " + chain + "\n";
    }
  }
  if (jumps.empty() && chains.empty()) return "";
  std::string x;
  for (std::istringstream c(chains); std::getline(c, line);) x += "-X" + line.substr(2) + "\n";
  return "*nat\n" + jumps + chains + x + "COMMIT\n";
}

// The tools of one family: IPv4 packets (AF_INET sockets and v4-mapped AF_INET6 ones)
// meet iptables, native IPv6 packets ip6tables.
struct Tools {
  int family;
  const char* save;
  const char* restore;
};
constexpr Tools kTools[] = {{AF_INET, "iptables-save", "iptables-restore"},
                            {AF_INET6, "ip6tables-save", "ip6tables-restore"}};

static Result<bool> teardown(const host::Netns& ns) {
  bool had = false;
  for (const Tools& t : kTools) {
    auto save = run(ns, {t.save, "-t", "nat"}, "");
    if (!save) return save.error();
    std::string input = render_teardown(*save);
    if (input.empty()) continue;
    auto r = run(ns, {t.restore, "--noflush", "-w"}, input);
    if (!r) return r.error();
    had = true;
  }
  return had;
}

Status enroll(const host::Netns& ns, const WorkloadSettings& s) {
  if (Status v = s.validate(); !v) return v;
  if (auto t = teardown(ns); !t) return t.error();
  for (const Tools& t : kTools) {
    auto r = run(ns, {t.restore, "--noflush", "-w"}, render_rules(s, t.family));
    if (!r) {
      (void)teardown(ns);  // nothing half-enrolled
      return r.error();
    }
  }
  return {};
}

Result<bool> unenroll(const host::Netns& ns) {
  return teardown(ns);
}

}  // namespace sm::iptables
