// Network config, CNI_* environment and pod annotations; see netconf.h.
#include "netconf.h"

#include <algorithm>

#include "sockmesh/net.h"

namespace sm::cni {
namespace {

CniError config_error(const std::string& msg) {
  return CniError{kInvalidConfig, "sockmesh-cni config: " + msg, ""};
}

// A port or CIDR list given as "a,b" or as a JSON array of strings/numbers.
std::variant<std::string, CniError> list_text(const Json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) return config_error(key + ": must be a string \"a,b\" or an array");
  std::string out;
  for (const auto& e : v) {
    std::string item;
    if (e.is_string())
      item = e.get<std::string>();
    else if (e.is_number_unsigned())
      item = std::to_string(e.get<uint64_t>());
    else
      return config_error(key + ": " + e.dump() + ": not a string or a number");
    out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

std::optional<CniError> read_u32(const Json& conf, const char* key, uint32_t max, uint32_t& out) {
  if (!conf.contains(key)) return std::nullopt;
  const Json& v = conf[key];
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max)
    return config_error(std::string(key) + ": " + v.dump() + ": must be a number 0.." +
                        std::to_string(max));
  out = static_cast<uint32_t>(v.get<uint64_t>());
  return std::nullopt;
}

std::optional<CniError> read_settings(const Json& conf, WorkloadSettings& s) {
  uint32_t v = 0;
  for (auto [key, port] :
       {std::pair{"outboundPort", &s.outbound_port}, std::pair{"inboundPort", &s.inbound_port}}) {
    if (!conf.contains(key)) continue;
    if (auto e = read_u32(conf, key, 65535, v)) return e;
    if (v == 0) return config_error(std::string(key) + ": port must be 1..65535");
    *port = static_cast<uint16_t>(v);
  }
  if (auto e = read_u32(conf, "proxyUid", UINT32_MAX, s.proxy_uid)) return e;
  if (conf.contains("proxyGid")) {
    if (auto e = read_u32(conf, "proxyGid", UINT32_MAX, v)) return e;
    s.proxy_gid = v;
  }
  auto ports = [&](const char* key, std::vector<uint16_t>& out) -> std::optional<CniError> {
    if (!conf.contains(key)) return std::nullopt;
    auto text = list_text(conf[key], key);
    if (auto* e = std::get_if<CniError>(&text)) return *e;
    auto p = parse_port_list(std::get<std::string>(text), key);
    if (!p) return config_error(p.error().message());
    out = *p;
    return std::nullopt;
  };
  auto cidrs = [&](const char* key, std::vector<IpCidr>& out) -> std::optional<CniError> {
    if (!conf.contains(key)) return std::nullopt;
    auto text = list_text(conf[key], key);
    if (auto* e = std::get_if<CniError>(&text)) return *e;
    auto p = parse_cidr_list(std::get<std::string>(text), key);
    if (!p) return config_error(p.error().message());
    out = *p;
    return std::nullopt;
  };
  if (auto e = ports("excludeOutboundPorts", s.exclude_outbound_ports)) return e;
  if (auto e = ports("excludeInboundPorts", s.exclude_inbound_ports)) return e;
  if (auto e = cidrs("excludeCidrs", s.exclude_cidrs)) return e;
  if (auto e = cidrs("includeCidrs", s.include_cidrs)) return e;
  for (auto [key, flag] :
       {std::pair{"spliceApp", &s.splice_app}, std::pair{"failOpen", &s.fail_open}}) {
    if (!conf.contains(key)) continue;
    if (!conf[key].is_boolean()) return config_error(std::string(key) + ": must be true or false");
    *flag = conf[key].get<bool>();
  }
  return std::nullopt;
}

std::string csv(const std::vector<uint16_t>& ports) {
  std::string out;
  for (uint16_t p : ports) out += (out.empty() ? "" : ",") + std::to_string(p);
  return out;
}
std::string csv(const std::vector<IpCidr>& cidrs) {
  std::string out;
  for (const auto& c : cidrs) out += (out.empty() ? "" : ",") + c.str();
  return out;
}

}  // namespace

std::map<std::string, std::string> parse_cni_args(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string kv = text.substr(start, end - start);
    size_t eq = kv.find('=');
    if (eq != std::string::npos && eq > 0) out[kv.substr(0, eq)] = kv.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

std::variant<NetConf, CniError> parse_netconf(const std::string& stdin_text) {
  Json conf = Json::parse(stdin_text, nullptr, /*allow_exceptions=*/false);
  if (conf.is_discarded() || !conf.is_object())
    return CniError{kDecodeFailure,
                    "sockmesh-cni: the network config on stdin is not a JSON object", ""};
  NetConf nc;
  auto str = [&](const char* key, std::string& out) -> std::optional<CniError> {
    if (!conf.contains(key)) return std::nullopt;
    if (!conf[key].is_string()) return config_error(std::string(key) + ": must be a string");
    out = conf[key].get<std::string>();
    return std::nullopt;
  };
  if (auto e = str("cniVersion", nc.cni_version)) return *e;
  if (nc.cni_version.empty()) return config_error("cniVersion: missing");
  if (std::find(kSupportedVersions.begin(), kSupportedVersions.end(), nc.cni_version) ==
      kSupportedVersions.end())
    return CniError{kIncompatibleVersion,
                    "sockmesh-cni: cniVersion " + nc.cni_version + " is not supported",
                    "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0"};
  if (auto e = str("name", nc.name)) return *e;
  if (auto e = str("pinDir", nc.pin_dir)) return *e;
  if (nc.pin_dir.empty() || nc.pin_dir[0] != '/')
    return config_error("pinDir: '" + nc.pin_dir + "': needs an absolute path");
  std::string mode = "ebpf";
  if (auto e = str("mode", mode)) return *e;
  if (mode == "ebpf")
    nc.mode = Mode::ebpf;
  else if (mode == "iptables")
    nc.mode = Mode::iptables;
  else
    return config_error("mode: '" + mode + "': must be ebpf or iptables");
  if (auto e = read_settings(conf, nc.settings)) return *e;
  if (nc.settings.fail_open && nc.mode == Mode::iptables)
    return config_error(
        "failOpen: works only with mode ebpf (iptables REDIRECT cannot tell "
        "whether the sidecar listens)");
  if (Status s = nc.settings.validate(); !s) return config_error(s.error().message());
  if (conf.contains("excludeNamespaces")) {
    const Json& ns = conf["excludeNamespaces"];
    if (!ns.is_array() ||
        !std::all_of(ns.begin(), ns.end(), [](const Json& e) { return e.is_string(); }))
      return config_error("excludeNamespaces: must be an array of strings");
    nc.exclude_namespaces = ns.get<std::vector<std::string>>();
  }
  if (conf.contains("runtimeConfig") && conf["runtimeConfig"].is_object() &&
      conf["runtimeConfig"].contains(kAnnotationsCapability)) {
    const Json& a = conf["runtimeConfig"][kAnnotationsCapability];
    if (!a.is_object())
      return config_error(std::string("runtimeConfig.") + kAnnotationsCapability +
                          ": must be an object");
    for (const auto& [k, v] : a.items())
      if (v.is_string()) nc.annotations[k] = v.get<std::string>();
  }
  if (conf.contains("prevResult")) {
    if (!conf["prevResult"].is_object()) return config_error("prevResult: must be an object");
    nc.prev_result = conf["prevResult"];
  }
  return nc;
}

std::variant<CniRequest, CniError> parse_request(const Env& env, const std::string& stdin_text) {
  auto get = [&](const char* k) {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  CniRequest r;
  std::string cmd = get("CNI_COMMAND");
  if (cmd == "VERSION") {
    r.command = Command::version;
    return r;
  }
  if (cmd == "ADD")
    r.command = Command::add;
  else if (cmd == "DEL")
    r.command = Command::del;
  else if (cmd == "CHECK")
    r.command = Command::check;
  else
    return CniError{kInvalidEnv,
                    cmd.empty() ? "CNI_COMMAND is not set (sockmesh-cni is run by a container "
                                  "runtime as a chained CNI plugin)"
                                : "CNI_COMMAND '" + cmd + "' is not supported",
                    "supported: ADD, DEL, CHECK, VERSION"};
  r.container_id = get("CNI_CONTAINERID");
  r.netns = get("CNI_NETNS");
  r.ifname = get("CNI_IFNAME");
  r.args = parse_cni_args(get("CNI_ARGS"));
  if (r.container_id.empty()) return CniError{kInvalidEnv, "CNI_CONTAINERID is not set", ""};
  if (r.ifname.empty()) return CniError{kInvalidEnv, "CNI_IFNAME is not set", ""};
  if (r.command != Command::del && r.netns.empty())
    return CniError{kInvalidEnv, "CNI_NETNS is not set", ""};
  auto conf = parse_netconf(stdin_text);
  if (auto* e = std::get_if<CniError>(&conf)) return *e;
  r.conf = std::move(std::get<NetConf>(conf));
  if (r.command == Command::check && r.conf.cni_version.rfind("0.3.", 0) == 0)
    return CniError{kIncompatibleVersion, "CHECK needs cniVersion 0.4.0 or later", ""};
  if (r.command != Command::del) {
    if (Status s = apply_annotations(r.conf.annotations, r.conf.settings); !s)
      return CniError{kInvalidConfig, "sockmesh-cni: pod annotation " + s.error().message(), ""};
  }
  return r;
}

Status apply_annotations(const std::map<std::string, std::string>& annotations,
                         WorkloadSettings& s) {
  const std::string prefix = "traffic.sidecar.istio.io/";
  auto get = [&](const char* name) -> const std::string* {
    auto it = annotations.find(prefix + name);
    return it == annotations.end() ? nullptr : &it->second;
  };
  WorkloadSettings next = s;
  if (const auto* v = get("excludeOutboundPorts")) {
    auto p = parse_port_list(*v, prefix + "excludeOutboundPorts");
    if (!p) return p.error();
    next.exclude_outbound_ports = *p;
  }
  if (const auto* v = get("excludeInboundPorts")) {
    auto p = parse_port_list(*v, prefix + "excludeInboundPorts");
    if (!p) return p.error();
    next.exclude_inbound_ports = *p;
  }
  if (const auto* v = get("excludeOutboundIPRanges")) {
    auto c = parse_cidr_list(*v, prefix + "excludeOutboundIPRanges");
    if (!c) return c.error();
    next.exclude_cidrs = *c;
  }
  if (const auto* v = get("includeOutboundIPRanges")) {
    auto c = parse_cidr_list(*v, prefix + "includeOutboundIPRanges");
    if (!c) return c.error();
    if (c->empty()) {
      // Istio: an empty include list redirects nothing outbound.
      next.include_cidrs.clear();
      for (const char* all : {"0.0.0.0/0", "::/0"})
        next.exclude_cidrs.push_back(*parse_cidr(all, ""));
    } else {
      next.include_cidrs = *c;
    }
  }
  if (Status st = next.validate(); !st) return st;
  s = next;
  return {};
}

std::string skip_reason(const CniRequest& r) {
  auto ns = r.args.find("K8S_POD_NAMESPACE");
  if (ns != r.args.end() &&
      std::find(r.conf.exclude_namespaces.begin(), r.conf.exclude_namespaces.end(), ns->second) !=
          r.conf.exclude_namespaces.end())
    return "namespace " + ns->second + " is in excludeNamespaces";
  auto opt = r.conf.annotations.find("sockmesh.io/enroll");
  if (opt != r.conf.annotations.end() && opt->second == "false")
    return "annotation sockmesh.io/enroll is \"false\"";
  return "";
}

Json plugin_entry(const std::string& pin_dir, Mode mode, const WorkloadSettings& s) {
  Json e;
  e["type"] = kPluginType;
  e["pinDir"] = pin_dir;
  e["mode"] = mode == Mode::ebpf ? "ebpf" : "iptables";
  e["outboundPort"] = s.outbound_port;
  e["inboundPort"] = s.inbound_port;
  e["proxyUid"] = s.proxy_uid;
  e["proxyGid"] = s.gid();
  e["excludeOutboundPorts"] = csv(s.exclude_outbound_ports);
  e["excludeInboundPorts"] = csv(s.exclude_inbound_ports);
  e["excludeCidrs"] = csv(s.exclude_cidrs);
  e["includeCidrs"] = csv(s.include_cidrs);
  if (s.splice_app) e["spliceApp"] = true;
  if (s.fail_open) e["failOpen"] = true;
  e["capabilities"] = Json{{kAnnotationsCapability, true}};
  return e;
}

}  // namespace sm::cni
