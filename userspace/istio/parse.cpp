// Istio rule parsing; see parse.h. Field errors are thrown as Invalid and become the one
// error of parse_rules; nothing escapes it.
#include "istio/parse.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <stdexcept>

namespace sm::istio {
namespace {

struct Invalid : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& path, std::string_view why) {
  throw Invalid(path.empty() ? std::string(why) : path + ": " + std::string(why));
}

std::string at(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string dot(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

using Names = std::initializer_list<std::string_view>;

bool in(Names names, std::string_view key) {
  for (std::string_view n : names)
    if (n == key) return true;
  return false;
}

// One document's walk: where we are and what was found unsupported.
class Doc {
 public:
  explicit Doc(std::vector<std::string>& unsupported) : unsupported_(unsupported) {}
  void set_prefix(std::string p) { prefix_ = std::move(p); }

  // A map whose keys must be `supported` or `unsupported` (reported); anything else is an
  // unknown field, which Istio's validation rejects too.
  void fields(const YAML::Node& n, const std::string& path, Names supported, Names unsupported) {
    if (!n.IsMap()) fail(path, "must be an object");
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (in(supported, key)) continue;
      if (in(unsupported, key)) {
        report(dot(path, key));
        continue;
      }
      fail(dot(path, key), "unknown field");
    }
  }
  void report(const std::string& path, std::string_view why = "not supported") {
    unsupported_.push_back(prefix_ + path + ": " + std::string(why));
  }

 private:
  std::vector<std::string>& unsupported_;
  std::string prefix_;
};

const YAML::Node child(const YAML::Node& n, std::string_view key) {
  return n[std::string(key)];
}
bool has(const YAML::Node& n, std::string_view key) {
  const YAML::Node c = child(n, key);
  return c.IsDefined() && !c.IsNull();
}

std::string scalar(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) fail(path, "must be a string");
  return n.Scalar();
}

uint64_t integer(const YAML::Node& n, const std::string& path, uint64_t lo, uint64_t hi) {
  const std::string range = "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!n.IsScalar()) fail(path, range);
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) fail(path, range);
  if (v < lo || v > hi) fail(path, range);
  return v;
}

double number(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) fail(path, "must be a number");
  try {
    size_t used = 0;
    double v = std::stod(n.Scalar(), &used);
    if (used != n.Scalar().size() || !std::isfinite(v)) fail(path, "must be a number");
    return v;
  } catch (const std::logic_error&) {
    fail(path, "must be a number");
  }
}

bool boolean(const YAML::Node& n, const std::string& path) {
  if (n.IsScalar()) {
    if (n.Scalar() == "true") return true;
    if (n.Scalar() == "false") return false;
  }
  fail(path, "must be true or false");
}

Duration duration(const YAML::Node& n, const std::string& path) {
  auto d = parse_istio_duration(scalar(n, path), path);
  if (!d) throw Invalid(d.error().message());
  return *d;
}

YAML::Node seq(const YAML::Node& n, const std::string& path) {
  if (!n.IsSequence()) fail(path, "must be a list");
  return n;
}

std::map<std::string, std::string> string_map(const YAML::Node& n, const std::string& path) {
  if (!n.IsMap()) fail(path, "must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& kv : n) out[kv.first.Scalar()] = scalar(kv.second, dot(path, kv.first.Scalar()));
  return out;
}

double percentage(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"value"}, {});
  double v = has(n, "value") ? number(child(n, "value"), dot(path, "value")) : 0.0;
  if (v < 0 || v > 100) fail(dot(path, "value"), "must be 0..100");
  return v;
}

// ---- VirtualService ----

StringMatch string_match(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"exact", "prefix", "regex"}, {});
  int kinds = 0;
  StringMatch m;
  for (auto [key, kind] : {std::pair{"exact", StringMatch::Kind::exact},
                           std::pair{"prefix", StringMatch::Kind::prefix},
                           std::pair{"regex", StringMatch::Kind::regex}}) {
    if (!has(n, key)) continue;
    ++kinds;
    m.kind = kind;
    m.value = scalar(child(n, key), dot(path, key));
  }
  if (kinds != 1) fail(path, "needs exactly one of exact, prefix, regex");
  return m;
}

std::map<std::string, std::optional<StringMatch>> header_matches(const YAML::Node& n,
                                                                 const std::string& path,
                                                                 Doc& doc) {
  if (!n.IsMap()) fail(path, "must be an object");
  std::map<std::string, std::optional<StringMatch>> out;
  for (const auto& kv : n) {
    std::string name = kv.first.Scalar();
    const std::string hpath = dot(path, name);
    for (char c : name)
      if (c >= 'A' && c <= 'Z') fail(hpath, "header names must be lowercase");
    if (kv.second.IsNull() || (kv.second.IsMap() && kv.second.size() == 0))
      out[name] = std::nullopt;  // presence
    else
      out[name] = string_match(kv.second, hpath, doc);
  }
  return out;
}

HttpMatchRequest match_request(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path,
             {"name", "uri", "method", "authority", "headers", "withoutHeaders", "ignoreUriCase",
              "sourceLabels"},
             {"scheme", "port", "queryParams", "gateways", "sourceNamespace", "statPrefix"});
  HttpMatchRequest m;
  if (has(n, "name")) m.name = scalar(child(n, "name"), dot(path, "name"));
  if (has(n, "uri")) m.uri = string_match(child(n, "uri"), dot(path, "uri"), doc);
  if (has(n, "method")) m.method = string_match(child(n, "method"), dot(path, "method"), doc);
  if (has(n, "authority"))
    m.authority = string_match(child(n, "authority"), dot(path, "authority"), doc);
  if (has(n, "headers")) m.headers = header_matches(child(n, "headers"), dot(path, "headers"), doc);
  if (has(n, "withoutHeaders"))
    m.without_headers =
        header_matches(child(n, "withoutHeaders"), dot(path, "withoutHeaders"), doc);
  if (has(n, "ignoreUriCase"))
    m.ignore_uri_case = boolean(child(n, "ignoreUriCase"), dot(path, "ignoreUriCase"));
  if (has(n, "sourceLabels"))
    m.source_labels = string_map(child(n, "sourceLabels"), dot(path, "sourceLabels"));
  return m;
}

Destination destination(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"host", "subset", "port"}, {});
  Destination d;
  if (!has(n, "host")) fail(dot(path, "host"), "required");
  d.host = scalar(child(n, "host"), dot(path, "host"));
  if (d.host.empty()) fail(dot(path, "host"), "must not be empty");
  if (has(n, "subset")) d.subset = scalar(child(n, "subset"), dot(path, "subset"));
  if (has(n, "port")) {
    const std::string ppath = dot(path, "port");
    doc.fields(child(n, "port"), ppath, {"number"}, {});
    d.port = static_cast<uint32_t>(
        integer(child(child(n, "port"), "number"), dot(ppath, "number"), 1, 65535));
  }
  return d;
}

HttpFault fault(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"delay", "abort"}, {});
  HttpFault f;
  if (has(n, "delay")) {
    const std::string dpath = dot(path, "delay");
    const YAML::Node d = child(n, "delay");
    doc.fields(d, dpath, {"fixedDelay", "percentage", "percent"}, {"exponentialDelay"});
    HttpFault::Delay delay;
    if (has(d, "fixedDelay"))
      delay.fixed_delay = duration(child(d, "fixedDelay"), dot(dpath, "fixedDelay"));
    else if (!has(d, "exponentialDelay"))
      fail(dot(dpath, "fixedDelay"), "required");
    if (has(d, "percentage"))
      delay.percent = percentage(child(d, "percentage"), dot(dpath, "percentage"), doc);
    else if (has(d, "percent"))
      delay.percent =
          static_cast<double>(integer(child(d, "percent"), dot(dpath, "percent"), 0, 100));
    if (has(d, "fixedDelay")) f.delay = delay;
  }
  if (has(n, "abort")) {
    const std::string apath = dot(path, "abort");
    const YAML::Node a = child(n, "abort");
    doc.fields(a, apath, {"httpStatus", "percentage"}, {"grpcStatus", "http2Error"});
    HttpFault::Abort abort;
    if (has(a, "percentage"))
      abort.percent = percentage(child(a, "percentage"), dot(apath, "percentage"), doc);
    if (has(a, "httpStatus")) {
      abort.http_status = static_cast<uint32_t>(
          integer(child(a, "httpStatus"), dot(apath, "httpStatus"), 200, 599));
      f.abort = abort;
    } else if (!has(a, "grpcStatus") && !has(a, "http2Error")) {
      fail(dot(apath, "httpStatus"), "required");
    }
  }
  return f;
}

// Istio's validation: every retryOn item is a policy Envoy knows or an HTTP status code.
void check_retry_on(std::string_view list, const std::string& path) {
  static constexpr std::string_view kKnown[] = {"5xx",
                                                "gateway-error",
                                                "reset",
                                                "reset-before-request",
                                                "connect-failure",
                                                "envoy-ratelimited",
                                                "retriable-4xx",
                                                "refused-stream",
                                                "retriable-status-codes",
                                                "retriable-headers",
                                                "http3-post-connect-failure",
                                                "cancelled",
                                                "deadline-exceeded",
                                                "internal",
                                                "resource-exhausted",
                                                "unavailable"};
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    uint32_t code = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), code);
    if (ec == std::errc() && p == item.data() + item.size()) {
      if (code < 100 || code > 599) fail(path, "'" + std::string(item) + "': not an HTTP status");
      continue;
    }
    bool known = false;
    for (std::string_view k : kKnown) known = known || k == item;
    if (!known) fail(path, "'" + std::string(item) + "': unknown retry policy");
  }
}

HttpRoute http_route(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"name", "match", "route", "timeout", "retries", "fault", "rewrite"},
             {"redirect", "directResponse", "delegate", "mirror", "mirrors", "mirrorPercentage",
              "mirrorPercent", "mirror_percent", "corsPolicy", "headers"});
  HttpRoute r;
  if (has(n, "name")) r.name = scalar(child(n, "name"), dot(path, "name"));
  if (has(n, "match")) {
    const std::string mpath = dot(path, "match");
    const YAML::Node list = seq(child(n, "match"), mpath);
    for (size_t i = 0; i < list.size(); ++i)
      r.match.push_back(match_request(list[i], at(mpath, i), doc));
  }
  if (has(n, "route")) {
    const std::string rpath = dot(path, "route");
    const YAML::Node list = seq(child(n, "route"), rpath);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string dpath = at(rpath, i);
      doc.fields(list[i], dpath, {"destination", "weight"}, {"headers"});
      RouteDestination d;
      if (!has(list[i], "destination")) fail(dot(dpath, "destination"), "required");
      d.destination = destination(child(list[i], "destination"), dot(dpath, "destination"), doc);
      if (has(list[i], "weight"))
        d.weight =
            static_cast<uint32_t>(integer(child(list[i], "weight"), dot(dpath, "weight"), 0, 100));
      r.route.push_back(std::move(d));
    }
    if (r.route.size() > 1) {
      uint64_t total = 0;
      for (const auto& d : r.route) total += d.weight.value_or(0);
      if (total == 0) fail(rpath, "weights of several destinations must add up to more than 0");
    }
  }
  if (r.route.empty() && !has(n, "redirect") && !has(n, "directResponse") && !has(n, "delegate"))
    fail(path, "needs route (or redirect, directResponse, delegate)");
  if (has(n, "timeout")) r.timeout = duration(child(n, "timeout"), dot(path, "timeout"));
  if (has(n, "retries")) {
    const std::string rpath = dot(path, "retries");
    const YAML::Node x = child(n, "retries");
    doc.fields(x, rpath, {"attempts", "perTryTimeout", "retryOn"},
               {"retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff"});
    HttpRetry retry;
    if (has(x, "attempts"))
      retry.attempts =
          static_cast<uint32_t>(integer(child(x, "attempts"), dot(rpath, "attempts"), 0, 1000));
    if (has(x, "perTryTimeout"))
      retry.per_try_timeout = duration(child(x, "perTryTimeout"), dot(rpath, "perTryTimeout"));
    if (has(x, "retryOn")) {
      retry.retry_on = scalar(child(x, "retryOn"), dot(rpath, "retryOn"));
      check_retry_on(*retry.retry_on, dot(rpath, "retryOn"));
    }
    r.retries = retry;
  }
  if (has(n, "fault")) r.fault = fault(child(n, "fault"), dot(path, "fault"), doc);
  if (has(n, "rewrite")) {
    const std::string wpath = dot(path, "rewrite");
    const YAML::Node w = child(n, "rewrite");
    doc.fields(w, wpath, {"uri", "authority"}, {"uriRegexRewrite"});
    HttpRewrite rw;
    if (has(w, "uri")) rw.uri = scalar(child(w, "uri"), dot(wpath, "uri"));
    if (has(w, "authority")) rw.authority = scalar(child(w, "authority"), dot(wpath, "authority"));
    r.rewrite = rw;
  }
  return r;
}

std::vector<std::string> hosts(const YAML::Node& n, const std::string& path) {
  std::vector<std::string> out;
  const YAML::Node list = seq(n, path);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string h = scalar(list[i], at(path, i));
    if (h.empty()) fail(at(path, i), "must not be empty");
    out.push_back(std::move(h));
  }
  return out;
}

VirtualService virtual_service(const YAML::Node& spec, Doc& doc) {
  doc.fields(spec, "spec", {"hosts", "http", "gateways"}, {"tls", "tcp", "exportTo"});
  VirtualService vs;
  if (!has(spec, "hosts")) fail("spec.hosts", "required");
  vs.hosts = hosts(child(spec, "hosts"), "spec.hosts");
  if (vs.hosts.empty()) fail("spec.hosts", "must not be empty");
  if (has(spec, "gateways")) {
    // Sidecars are the "mesh" gateway; rules bound to other gateways are not ours.
    for (const std::string& g : hosts(child(spec, "gateways"), "spec.gateways"))
      if (g != "mesh")
        doc.report("spec.gateways", "only 'mesh' is supported ('" + g + "' ignored)");
  }
  if (has(spec, "http")) {
    const YAML::Node list = seq(child(spec, "http"), "spec.http");
    for (size_t i = 0; i < list.size(); ++i) {
      HttpRoute r = http_route(list[i], at("spec.http", i), doc);
      if (!r.route.empty())
        vs.http.push_back(std::move(r));
      else
        doc.report(at("spec.http", i), "has no route destination; left out");
    }
  }
  return vs;
}

// ---- DestinationRule ----

TrafficPolicy traffic_policy(const YAML::Node& n, const std::string& path, Doc& doc) {
  doc.fields(n, path, {"loadBalancer", "connectionPool", "outlierDetection", "tls"},
             {"portLevelSettings", "tunnel", "proxyProtocol", "retryBudget"});
  TrafficPolicy p;
  if (has(n, "loadBalancer")) {
    const std::string lpath = dot(path, "loadBalancer");
    const YAML::Node lb = child(n, "loadBalancer");
    doc.fields(lb, lpath, {"simple"},
               {"consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup"});
    if (has(lb, "simple")) {
      const std::string s = scalar(child(lb, "simple"), dot(lpath, "simple"));
      if (s == "ROUND_ROBIN" || s == "UNSPECIFIED")
        p.load_balancer = LoadBalancer::round_robin;
      else if (s == "LEAST_REQUEST" || s == "LEAST_CONN")
        p.load_balancer = LoadBalancer::least_request;
      else if (s == "RANDOM")
        p.load_balancer = LoadBalancer::random;
      else if (s == "PASSTHROUGH")
        doc.report(dot(lpath, "simple"), "PASSTHROUGH is not supported");
      else
        fail(dot(lpath, "simple"),
             "'" + s + "': must be ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH or UNSPECIFIED");
    }
  }
  if (has(n, "connectionPool")) {
    const std::string cpath = dot(path, "connectionPool");
    const YAML::Node cp = child(n, "connectionPool");
    doc.fields(cp, cpath, {"tcp", "http"}, {});
    ConnectionPool pool;
    if (has(cp, "tcp")) {
      const std::string tpath = dot(cpath, "tcp");
      const YAML::Node t = child(cp, "tcp");
      doc.fields(t, tpath, {"maxConnections", "connectTimeout"},
                 {"tcpKeepalive", "maxConnectionDuration", "idleTimeout"});
      if (has(t, "maxConnections"))
        pool.max_connections = static_cast<uint32_t>(
            integer(child(t, "maxConnections"), dot(tpath, "maxConnections"), 1, UINT32_MAX));
      if (has(t, "connectTimeout"))
        pool.connect_timeout = duration(child(t, "connectTimeout"), dot(tpath, "connectTimeout"));
    }
    if (has(cp, "http")) {
      const std::string hpath = dot(cpath, "http");
      const YAML::Node h = child(cp, "http");
      doc.fields(h, hpath,
                 {"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection",
                  "maxRetries", "idleTimeout"},
                 {"h2UpgradePolicy", "useClientProtocol", "maxConcurrentStreams"});
      auto u32 = [&](const char* key, std::optional<uint32_t>& out, uint64_t lo) {
        if (has(h, key))
          out = static_cast<uint32_t>(integer(child(h, key), dot(hpath, key), lo, UINT32_MAX));
      };
      u32("http1MaxPendingRequests", pool.http1_max_pending, 1);
      u32("http2MaxRequests", pool.http2_max_requests, 1);
      u32("maxRequestsPerConnection", pool.max_requests_per_connection, 0);
      u32("maxRetries", pool.max_retries, 0);
      if (has(h, "idleTimeout"))
        pool.idle_timeout = duration(child(h, "idleTimeout"), dot(hpath, "idleTimeout"));
    }
    p.connection_pool = pool;
  }
  if (has(n, "outlierDetection")) {
    const std::string opath = dot(path, "outlierDetection");
    const YAML::Node o = child(n, "outlierDetection");
    doc.fields(o, opath,
               {"consecutive5xxErrors", "consecutiveGatewayErrors", "consecutiveErrors",
                "consecutiveLocalOriginFailures", "interval", "baseEjectionTime",
                "maxEjectionPercent", "minHealthPercent"},
               {"splitExternalLocalOriginErrors"});
    OutlierDetection od;
    auto u32 = [&](const char* key, std::optional<uint32_t>& out, uint64_t hi) {
      if (has(o, key)) out = static_cast<uint32_t>(integer(child(o, key), dot(opath, key), 0, hi));
    };
    u32("consecutive5xxErrors", od.consecutive_5xx, UINT32_MAX);
    u32("consecutiveGatewayErrors", od.consecutive_gateway, UINT32_MAX);
    if (has(o, "consecutiveErrors") && !od.consecutive_gateway)  // deprecated spelling
      u32("consecutiveErrors", od.consecutive_gateway, UINT32_MAX);
    u32("consecutiveLocalOriginFailures", od.consecutive_local_origin, UINT32_MAX);
    u32("maxEjectionPercent", od.max_ejection_percent, 100);
    u32("minHealthPercent", od.min_health_percent, 100);
    if (has(o, "interval")) od.interval = duration(child(o, "interval"), dot(opath, "interval"));
    if (has(o, "baseEjectionTime"))
      od.base_ejection_time =
          duration(child(o, "baseEjectionTime"), dot(opath, "baseEjectionTime"));
    p.outlier_detection = od;
  }
  if (has(n, "tls")) {
    // Plain HTTP between sidecars: DISABLE is what we do; anything else is not.
    const YAML::Node t = child(n, "tls");
    if (!t.IsMap()) fail(dot(path, "tls"), "must be an object");
    const std::string mode = has(t, "mode") ? scalar(child(t, "mode"), dot(path, "tls.mode")) : "";
    if (mode != "DISABLE" || t.size() != 1) doc.report(dot(path, "tls"));
  }
  return p;
}

DestinationRule destination_rule(const YAML::Node& spec, Doc& doc) {
  doc.fields(spec, "spec", {"host", "trafficPolicy", "subsets"}, {"exportTo", "workloadSelector"});
  DestinationRule dr;
  if (!has(spec, "host")) fail("spec.host", "required");
  dr.host = scalar(child(spec, "host"), "spec.host");
  if (dr.host.empty()) fail("spec.host", "must not be empty");
  if (has(spec, "trafficPolicy"))
    dr.traffic_policy = traffic_policy(child(spec, "trafficPolicy"), "spec.trafficPolicy", doc);
  if (has(spec, "subsets")) {
    const YAML::Node list = seq(child(spec, "subsets"), "spec.subsets");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string spath = at("spec.subsets", i);
      doc.fields(list[i], spath, {"name", "labels", "trafficPolicy"}, {});
      Subset s;
      if (!has(list[i], "name")) fail(dot(spath, "name"), "required");
      s.name = scalar(child(list[i], "name"), dot(spath, "name"));
      if (s.name.empty()) fail(dot(spath, "name"), "must not be empty");
      for (const Subset& other : dr.subsets)
        if (other.name == s.name) fail(dot(spath, "name"), "duplicate subset '" + s.name + "'");
      if (has(list[i], "labels"))
        s.labels = string_map(child(list[i], "labels"), dot(spath, "labels"));
      if (has(list[i], "trafficPolicy"))
        s.traffic_policy =
            traffic_policy(child(list[i], "trafficPolicy"), dot(spath, "trafficPolicy"), doc);
      dr.subsets.push_back(std::move(s));
    }
  }
  return dr;
}

}  // namespace

void RuleSet::append(RuleSet other) {
  for (auto& v : other.virtual_services) virtual_services.push_back(std::move(v));
  for (auto& d : other.destination_rules) destination_rules.push_back(std::move(d));
  for (auto& u : other.unsupported) unsupported.push_back(std::move(u));
}

Result<Duration> parse_istio_duration(std::string_view text, std::string_view field) {
  const std::string f(field);
  auto bad = [&] {
    return plain_error(f + ": '" + std::string(text) +
                       "': must be a duration such as \"10s\", \"0.5s\", \"100ms\", \"1m\"");
  };
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ms", 1e6}, {"us", 1e3}, {"ns", 1.0}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  for (auto [suffix, scale] : kUnits) {
    if (text.size() <= suffix.size() || !text.ends_with(suffix)) continue;
    std::string_view num = text.substr(0, text.size() - suffix.size());
    if (num.back() < '0' || num.back() > '9') continue;  // "ms" vs "s"
    double v = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || p != num.data() + num.size() || !(v >= 0) || v * scale > 3.2e17)
      return bad();
    return Duration(static_cast<int64_t>(std::llround(v * scale)));
  }
  return bad();
}

Result<RuleSet> parse_rules(std::string_view text, const std::string& source) {
  RuleSet out;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return plain_error(source + ": invalid YAML at line " + std::to_string(e.mark.line + 1) +
                       ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const YAML::Node& d = docs[i];
    if (d.IsNull()) continue;  // "---" at the end of a file, or an empty document
    std::string where = source + "#" + std::to_string(i + 1);
    try {
      Doc doc(out.unsupported);
      if (!d.IsMap()) fail("", "a document must be an object");
      doc.fields(d, "", {"apiVersion", "kind", "metadata", "spec"}, {"status"});
      const std::string api =
          has(d, "apiVersion") ? scalar(child(d, "apiVersion"), "apiVersion") : "";
      const std::string kind = has(d, "kind") ? scalar(child(d, "kind"), "kind") : "";
      if (api.empty()) fail("apiVersion", "required");
      if (kind.empty()) fail("kind", "required");
      std::string name;
      if (has(d, "metadata")) {
        const YAML::Node m = child(d, "metadata");
        if (!m.IsMap()) fail("metadata", "must be an object");
        if (has(m, "name")) name = scalar(child(m, "name"), "metadata.name");
      }
      if (name.empty()) fail("metadata.name", "required");
      where += " " + kind + " " + name;
      if (api.rfind("networking.istio.io/", 0) != 0) {
        doc.set_prefix(where + ": ");
        doc.report("apiVersion", "'" + api + "' is not an Istio networking API; document ignored");
        continue;
      }
      const std::string version = api.substr(std::string("networking.istio.io/").size());
      if (version != "v1alpha3" && version != "v1beta1" && version != "v1")
        fail("apiVersion", "'" + api + "': must be networking.istio.io/v1alpha3, v1beta1 or v1");
      doc.set_prefix(where + ": ");
      if (kind != "VirtualService" && kind != "DestinationRule") {
        doc.report("kind", "not supported; document ignored");
        continue;
      }
      if (!has(d, "spec")) fail("spec", "required");
      if (kind == "VirtualService") {
        VirtualService vs = virtual_service(child(d, "spec"), doc);
        vs.name = name;
        vs.source = source + "#" + std::to_string(i + 1);
        out.virtual_services.push_back(std::move(vs));
      } else {
        DestinationRule dr = destination_rule(child(d, "spec"), doc);
        dr.name = name;
        dr.source = source + "#" + std::to_string(i + 1);
        out.destination_rules.push_back(std::move(dr));
      }
    } catch (const Invalid& e) {
      return plain_error(where + ": " + e.what());
    } catch (const YAML::Exception& e) {
      return plain_error(where + ": " + e.msg);
    }
  }
  return out;
}

}  // namespace sm::istio
