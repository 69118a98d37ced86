// JSON <-> RouteConfig; see config_json.h. Exceptions carry field errors up to the one
// catch in parse_route_config; nothing escapes the public functions.
#include "route/config_json.h"

#include <cerrno>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "route/ascii_case.h"
#include "sockmesh/net.h"

namespace sm::route {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& path, std::string_view why) {
  throw ConfigError(path + ": " + std::string(why));
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// A JSON object whose keys are checked against the fields we know.
class Object {
 public:
  Object(const json& j, std::string path, std::initializer_list<std::string_view> known)
      : j_(j), path_(std::move(path)) {
    if (!j.is_object()) fail(path_, "must be an object");
    for (const auto& [key, value] : j.items()) {
      bool ok = false;
      for (std::string_view k : known) ok = ok || k == key;
      if (!ok) fail(field(key), "unknown field");
    }
  }

  std::string field(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const json* find(std::string_view key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  const json& require(std::string_view key) const {
    const json* v = find(key);
    if (!v) fail(field(key), "required");
    return *v;
  }
  const std::string& path() const { return path_; }

 private:
  const json& j_;
  std::string path_;
};

std::string as_string(const json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "must be a string");
  return j.get<std::string>();
}

bool as_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "must be true or false");
  return j.get<bool>();
}

uint64_t as_uint(const json& j, const std::string& path, uint64_t lo, uint64_t hi) {
  const std::string range = "must be " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!j.is_number_integer()) fail(path, j.is_number() ? range : "must be an integer");
  if (!j.is_number_unsigned()) fail(path, range);  // negative
  uint64_t v = j.get<uint64_t>();
  if (v < lo || v > hi) fail(path, range);
  return v;
}

uint32_t as_u32(const json& j, const std::string& path, uint32_t lo = 0) {
  return static_cast<uint32_t>(as_uint(j, path, lo, UINT32_MAX));
}

double as_number(const json& j, const std::string& path) {
  if (!j.is_number()) fail(path, "must be a number");
  return j.get<double>();
}

Duration as_duration(const json& j, const std::string& path) {
  auto d = parse_duration(as_string(j, path), path);
  if (!d) throw ConfigError(d.error().message());
  return *d;
}

const json& as_array(const json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "must be an array");
  return j;
}

// ---- parsing ----

HeaderMatcherConfig parse_header_matcher(const json& j, const std::string& path) {
  Object o(j, path,
           {"name", "exact_match", "prefix_match", "suffix_match", "safe_regex_match",
            "present_match", "invert_match"});
  HeaderMatcherConfig h;
  h.name = as_string(o.require("name"), o.field("name"));
  int kinds = 0;
  if (const json* v = o.find("exact_match")) {
    h.kind = HeaderMatcherConfig::Kind::exact;
    h.value = as_string(*v, o.field("exact_match"));
    ++kinds;
  }
  if (const json* v = o.find("prefix_match")) {
    h.kind = HeaderMatcherConfig::Kind::prefix;
    h.value = as_string(*v, o.field("prefix_match"));
    ++kinds;
  }
  if (const json* v = o.find("suffix_match")) {
    h.kind = HeaderMatcherConfig::Kind::suffix;
    h.value = as_string(*v, o.field("suffix_match"));
    ++kinds;
  }
  if (const json* v = o.find("safe_regex_match")) {
    h.kind = HeaderMatcherConfig::Kind::regex;
    Object re(*v, o.field("safe_regex_match"), {"regex"});
    h.value = as_string(re.require("regex"), re.field("regex"));
    ++kinds;
  }
  if (const json* v = o.find("present_match")) {
    h.kind = HeaderMatcherConfig::Kind::present;
    h.present = as_bool(*v, o.field("present_match"));
    ++kinds;
  }
  if (kinds > 1)
    fail(path,
         "needs at most one of exact_match, prefix_match, suffix_match, safe_regex_match, "
         "present_match");
  if (const json* v = o.find("invert_match")) h.invert = as_bool(*v, o.field("invert_match"));
  return h;
}

RouteMatchConfig parse_match(const json& j, const std::string& path) {
  Object o(j, path, {"prefix", "path", "safe_regex", "case_sensitive", "headers"});
  RouteMatchConfig m;
  const json* prefix = o.find("prefix");
  const json* exact = o.find("path");
  const json* regex = o.find("safe_regex");
  if ((prefix != nullptr) + (exact != nullptr) + (regex != nullptr) != 1)
    fail(path, "needs exactly one of prefix, path, safe_regex");
  if (prefix) {
    m.kind = RouteMatchConfig::PathKind::prefix;
    m.value = as_string(*prefix, o.field("prefix"));
  } else if (exact) {
    m.kind = RouteMatchConfig::PathKind::path;
    m.value = as_string(*exact, o.field("path"));
  } else {
    m.kind = RouteMatchConfig::PathKind::regex;
    Object re(*regex, o.field("safe_regex"), {"regex"});
    m.value = as_string(re.require("regex"), re.field("regex"));
  }
  if (const json* v = o.find("case_sensitive"))
    m.case_sensitive = as_bool(*v, o.field("case_sensitive"));
  if (const json* v = o.find("headers")) {
    const std::string hpath = o.field("headers");
    for (size_t i = 0; i < as_array(*v, hpath).size(); ++i)
      m.headers.push_back(parse_header_matcher((*v)[i], index(hpath, i)));
  }
  return m;
}

RetryPolicy parse_retry_policy(const json& j, const std::string& path) {
  Object o(
      j, path,
      {"retry_on", "num_retries", "per_try_timeout", "retriable_status_codes", "retry_back_off"});
  RetryPolicy p;
  if (const json* v = o.find("retry_on")) {
    auto bits = parse_retry_on(as_string(*v, o.field("retry_on")), o.field("retry_on"));
    if (!bits) throw ConfigError(bits.error().message());
    p.retry_on = *bits;
  }
  if (const json* v = o.find("num_retries")) p.num_retries = as_u32(*v, o.field("num_retries"));
  if (const json* v = o.find("per_try_timeout"))
    p.per_try_timeout = as_duration(*v, o.field("per_try_timeout"));
  if (const json* v = o.find("retriable_status_codes")) {
    const std::string cpath = o.field("retriable_status_codes");
    for (size_t i = 0; i < as_array(*v, cpath).size(); ++i)
      p.retriable_status_codes.push_back(
          static_cast<uint16_t>(as_uint((*v)[i], index(cpath, i), 100, 599)));
  }
  if (const json* v = o.find("retry_back_off")) {
    Object b(*v, o.field("retry_back_off"), {"base_interval", "max_interval"});
    if (const json* base = b.find("base_interval"))
      p.base_interval = as_duration(*base, b.field("base_interval"));
    // Envoy: max_interval defaults to 10 x base_interval.
    p.max_interval = p.base_interval * 10;
    if (const json* max = b.find("max_interval"))
      p.max_interval = as_duration(*max, b.field("max_interval"));
  }
  return p;
}

double as_percent(const json& j, const std::string& path) {
  double v = as_number(j, path);
  if (!(v >= 0.0 && v <= 100.0)) fail(path, "must be 0..100");
  return v;
}

FaultConfig parse_fault(const json& j, const std::string& path) {
  Object o(j, path, {"delay", "abort"});
  FaultConfig f;
  if (const json* v = o.find("delay")) {
    Object d(*v, o.field("delay"), {"fixed_delay", "percent"});
    FaultConfig::Delay delay;
    delay.fixed_delay = as_duration(d.require("fixed_delay"), d.field("fixed_delay"));
    if (const json* p = d.find("percent")) delay.percent = as_percent(*p, d.field("percent"));
    f.delay = delay;
  }
  if (const json* v = o.find("abort")) {
    Object a(*v, o.field("abort"), {"http_status", "percent"});
    FaultConfig::Abort abort;
    abort.http_status =
        static_cast<uint16_t>(as_uint(a.require("http_status"), a.field("http_status"), 200, 599));
    if (const json* p = a.find("percent")) abort.percent = as_percent(*p, a.field("percent"));
    f.abort = abort;
  }
  if (!f.delay && !f.abort) fail(path, "needs delay or abort");
  return f;
}

RouteActionConfig parse_action(const json& j, const std::string& path) {
  Object o(j, path,
           {"cluster", "weighted_clusters", "timeout", "retry_policy", "prefix_rewrite",
            "host_rewrite", "fault"});
  RouteActionConfig a;
  const json* cluster = o.find("cluster");
  const json* weighted = o.find("weighted_clusters");
  if ((cluster != nullptr) == (weighted != nullptr))
    fail(path, "needs exactly one of cluster, weighted_clusters");
  if (cluster) {
    a.cluster = as_string(*cluster, o.field("cluster"));
    if (a.cluster.empty()) fail(o.field("cluster"), "must not be empty");
  } else {
    Object w(*weighted, o.field("weighted_clusters"), {"clusters"});
    const std::string cpath = w.field("clusters");
    const json& list = as_array(w.require("clusters"), cpath);
    if (list.empty()) fail(cpath, "must not be empty");
    for (size_t i = 0; i < list.size(); ++i) {
      Object c(list[i], index(cpath, i), {"name", "weight"});
      a.weighted_clusters.push_back({as_string(c.require("name"), c.field("name")),
                                     as_u32(c.require("weight"), c.field("weight"))});
    }
  }
  if (const json* v = o.find("timeout")) a.timeout = as_duration(*v, o.field("timeout"));
  if (const json* v = o.find("retry_policy"))
    a.retry_policy = parse_retry_policy(*v, o.field("retry_policy"));
  if (const json* v = o.find("prefix_rewrite"))
    a.prefix_rewrite = as_string(*v, o.field("prefix_rewrite"));
  if (const json* v = o.find("host_rewrite"))
    a.host_rewrite = as_string(*v, o.field("host_rewrite"));
  if (const json* v = o.find("fault")) a.fault = parse_fault(*v, o.field("fault"));
  return a;
}

VirtualHostConfig parse_virtual_host(const json& j, const std::string& path) {
  Object o(j, path, {"name", "domains", "routes"});
  VirtualHostConfig vh;
  vh.name = as_string(o.require("name"), o.field("name"));
  const std::string dpath = o.field("domains");
  const json& domains = as_array(o.require("domains"), dpath);
  for (size_t i = 0; i < domains.size(); ++i)
    vh.domains.push_back(as_string(domains[i], index(dpath, i)));
  if (const json* routes = o.find("routes")) {
    const std::string rpath = o.field("routes");
    for (size_t i = 0; i < as_array(*routes, rpath).size(); ++i) {
      Object r((*routes)[i], index(rpath, i), {"name", "match", "route"});
      RouteEntryConfig entry;
      if (const json* n = r.find("name")) entry.name = as_string(*n, r.field("name"));
      entry.match = parse_match(r.require("match"), r.field("match"));
      entry.action = parse_action(r.require("route"), r.field("route"));
      vh.routes.push_back(std::move(entry));
    }
  }
  return vh;
}

EndpointConfig parse_endpoint(const json& j, const std::string& path) {
  Object o(j, path, {"address", "port", "weight", "labels"});
  EndpointConfig ep;
  const std::string apath = o.field("address");
  auto addr = parse_ip(as_string(o.require("address"), apath), apath);
  if (!addr) throw ConfigError(addr.error().message());
  ep.address = *addr;
  ep.port = static_cast<uint16_t>(as_uint(o.require("port"), o.field("port"), 1, 65535));
  if (const json* v = o.find("weight")) ep.weight = as_u32(*v, o.field("weight"), 1);
  if (const json* v = o.find("labels")) {
    const std::string lpath = o.field("labels");
    if (!v->is_object()) fail(lpath, "must be an object of strings");
    for (const auto& [key, value] : v->items())
      ep.labels[key] = as_string(value, lpath + "." + key);
  }
  return ep;
}

LbPolicy parse_lb_policy(const json& j, const std::string& path) {
  // Envoy prints the enum in capitals; the short form is ours. Both are accepted.
  std::string name = lower_copy(as_string(j, path));
  if (name == "round_robin") return LbPolicy::round_robin;
  if (name == "least_request") return LbPolicy::least_request;
  if (name == "random") return LbPolicy::random;
  fail(path, "'" + j.get<std::string>() + "': must be round_robin, least_request or random");
}

ClusterConfig parse_cluster(const json& j, const std::string& path) {
  Object o(
      j, path,
      {"name", "lb_policy", "connect_timeout", "endpoints", "circuit_breakers", "outlier_detection",
       "healthy_panic_threshold", "max_requests_per_connection", "idle_timeout"});
  ClusterConfig c;
  c.name = as_string(o.require("name"), o.field("name"));
  if (const json* v = o.find("lb_policy")) c.lb_policy = parse_lb_policy(*v, o.field("lb_policy"));
  if (const json* v = o.find("connect_timeout"))
    c.connect_timeout = as_duration(*v, o.field("connect_timeout"));
  if (const json* v = o.find("endpoints")) {
    const std::string epath = o.field("endpoints");
    for (size_t i = 0; i < as_array(*v, epath).size(); ++i)
      c.endpoints.push_back(parse_endpoint((*v)[i], index(epath, i)));
  }
  if (const json* v = o.find("circuit_breakers")) {
    Object cb(
        *v, o.field("circuit_breakers"),
        {"max_connections", "max_pending_requests", "max_requests", "max_retries", "retry_budget"});
    CircuitBreakerThresholds& t = c.circuit_breakers;
    if (const json* x = cb.find("max_connections"))
      t.max_connections = as_u32(*x, cb.field("max_connections"));
    if (const json* x = cb.find("max_pending_requests"))
      t.max_pending_requests = as_u32(*x, cb.field("max_pending_requests"));
    if (const json* x = cb.find("max_requests"))
      t.max_requests = as_u32(*x, cb.field("max_requests"));
    if (const json* x = cb.find("max_retries")) t.max_retries = as_u32(*x, cb.field("max_retries"));
    if (const json* x = cb.find("retry_budget")) {
      Object rb(*x, cb.field("retry_budget"), {"budget_percent", "min_retry_concurrency"});
      RetryBudget budget;
      if (const json* y = rb.find("budget_percent"))
        budget.budget_percent = as_number(*y, rb.field("budget_percent"));
      if (const json* y = rb.find("min_retry_concurrency"))
        budget.min_retry_concurrency = as_u32(*y, rb.field("min_retry_concurrency"));
      t.retry_budget = budget;
    }
  }
  if (const json* v = o.find("outlier_detection")) {
    Object od(*v, o.field("outlier_detection"),
              {"consecutive_local_origin_failure", "consecutive_5xx", "consecutive_gateway_failure",
               "interval", "base_ejection_time", "max_ejection_time", "max_ejection_percent"});
    OutlierDetectionConfig& d = c.outlier_detection;
    if (const json* x = od.find("consecutive_5xx"))
      d.consecutive_5xx = as_u32(*x, od.field("consecutive_5xx"));
    if (const json* x = od.find("consecutive_gateway_failure"))
      d.consecutive_gateway_failure = as_u32(*x, od.field("consecutive_gateway_failure"));
    if (const json* x = od.find("interval")) d.interval = as_duration(*x, od.field("interval"));
    if (const json* x = od.find("max_ejection_time"))
      d.max_ejection_time = as_duration(*x, od.field("max_ejection_time"));
    if (const json* x = od.find("max_ejection_percent"))
      d.max_ejection_percent =
          static_cast<uint32_t>(as_uint(*x, od.field("max_ejection_percent"), 0, 100));
    if (const json* x = od.find("consecutive_local_origin_failure"))
      c.outlier_detection.consecutive_local_origin_failure =
          as_u32(*x, od.field("consecutive_local_origin_failure"));
    if (const json* x = od.find("base_ejection_time"))
      c.outlier_detection.base_ejection_time = as_duration(*x, od.field("base_ejection_time"));
  }
  if (const json* v = o.find("healthy_panic_threshold"))
    c.healthy_panic_threshold =
        static_cast<uint32_t>(as_uint(*v, o.field("healthy_panic_threshold"), 0, 100));
  if (const json* v = o.find("max_requests_per_connection"))
    c.max_requests_per_connection = as_u32(*v, o.field("max_requests_per_connection"));
  if (const json* v = o.find("idle_timeout"))
    c.idle_timeout = as_duration(*v, o.field("idle_timeout"));
  return c;
}

RouteConfig parse_root(const json& j) {
  if (!j.is_object()) throw ConfigError("route config: must be a JSON object");
  // "control_plane" is what /config_dump says about the table's sources (Consul, rules); it
  // is information, not configuration, and is ignored here so a dump reads back.
  Object o(j, "", {"virtual_hosts", "clusters", "control_plane"});
  RouteConfig config;
  if (const json* v = o.find("virtual_hosts")) {
    for (size_t i = 0; i < as_array(*v, "virtual_hosts").size(); ++i)
      config.virtual_hosts.push_back(parse_virtual_host((*v)[i], index("virtual_hosts", i)));
  }
  if (const json* v = o.find("clusters")) {
    for (size_t i = 0; i < as_array(*v, "clusters").size(); ++i)
      config.clusters.push_back(parse_cluster((*v)[i], index("clusters", i)));
  }
  return config;
}

// ---- dumping: a field equal to its default is left out ----

ojson dump_header_matcher(const HeaderMatcherConfig& h) {
  ojson j;
  j["name"] = h.name;
  switch (h.kind) {
    case HeaderMatcherConfig::Kind::exact:
      j["exact_match"] = h.value;
      break;
    case HeaderMatcherConfig::Kind::prefix:
      j["prefix_match"] = h.value;
      break;
    case HeaderMatcherConfig::Kind::suffix:
      j["suffix_match"] = h.value;
      break;
    case HeaderMatcherConfig::Kind::regex:
      j["safe_regex_match"] = {{"regex", h.value}};
      break;
    case HeaderMatcherConfig::Kind::present:
      j["present_match"] = h.present;
      break;
  }
  if (h.invert) j["invert_match"] = true;
  return j;
}

ojson dump_retry_policy(const RetryPolicy& p) {
  const RetryPolicy defaults;
  ojson j = ojson::object();
  if (p.retry_on) j["retry_on"] = format_retry_on(p.retry_on);
  if (p.num_retries != defaults.num_retries) j["num_retries"] = p.num_retries;
  if (p.per_try_timeout.count()) j["per_try_timeout"] = format_duration(p.per_try_timeout);
  if (!p.retriable_status_codes.empty()) j["retriable_status_codes"] = p.retriable_status_codes;
  ojson backoff = ojson::object();
  if (p.base_interval != defaults.base_interval)
    backoff["base_interval"] = format_duration(p.base_interval);
  if (p.max_interval != p.base_interval * 10)
    backoff["max_interval"] = format_duration(p.max_interval);
  if (!backoff.empty()) j["retry_back_off"] = std::move(backoff);
  return j;
}

ojson dump_route(const RouteEntryConfig& r) {
  const RouteActionConfig defaults;
  ojson j;
  if (!r.name.empty()) j["name"] = r.name;
  ojson& m = j["match"];
  switch (r.match.kind) {
    case RouteMatchConfig::PathKind::prefix:
      m["prefix"] = r.match.value;
      break;
    case RouteMatchConfig::PathKind::path:
      m["path"] = r.match.value;
      break;
    case RouteMatchConfig::PathKind::regex:
      m["safe_regex"] = {{"regex", r.match.value}};
      break;
  }
  if (!r.match.case_sensitive) m["case_sensitive"] = false;
  if (!r.match.headers.empty()) {
    ojson& headers = m["headers"] = ojson::array();
    for (const auto& h : r.match.headers) headers.push_back(dump_header_matcher(h));
  }
  const RouteActionConfig& a = r.action;
  ojson& act = j["route"];
  if (!a.cluster.empty()) {
    act["cluster"] = a.cluster;
  } else {
    ojson& clusters = act["weighted_clusters"]["clusters"] = ojson::array();
    for (const auto& wc : a.weighted_clusters)
      clusters.push_back({{"name", wc.name}, {"weight", wc.weight}});
  }
  if (a.timeout != defaults.timeout) act["timeout"] = format_duration(a.timeout);
  if (a.retry_policy) act["retry_policy"] = dump_retry_policy(*a.retry_policy);
  if (a.prefix_rewrite) act["prefix_rewrite"] = *a.prefix_rewrite;
  if (a.host_rewrite) act["host_rewrite"] = *a.host_rewrite;
  if (a.fault) {
    const FaultConfig defaults_f{FaultConfig::Delay{}, FaultConfig::Abort{}};
    ojson& f = act["fault"] = ojson::object();
    if (a.fault->delay) {
      f["delay"]["fixed_delay"] = format_duration(a.fault->delay->fixed_delay);
      if (a.fault->delay->percent != defaults_f.delay->percent)
        f["delay"]["percent"] = a.fault->delay->percent;
    }
    if (a.fault->abort) {
      f["abort"]["http_status"] = a.fault->abort->http_status;
      if (a.fault->abort->percent != defaults_f.abort->percent)
        f["abort"]["percent"] = a.fault->abort->percent;
    }
  }
  return j;
}

ojson dump_cluster(const ClusterConfig& c) {
  const ClusterConfig defaults;
  ojson j;
  j["name"] = c.name;
  switch (c.lb_policy) {
    case LbPolicy::round_robin:
      j["lb_policy"] = "round_robin";
      break;
    case LbPolicy::least_request:
      j["lb_policy"] = "least_request";
      break;
    case LbPolicy::random:
      j["lb_policy"] = "random";
      break;
  }
  if (c.connect_timeout != defaults.connect_timeout)
    j["connect_timeout"] = format_duration(c.connect_timeout);
  ojson& endpoints = j["endpoints"] = ojson::array();
  for (const auto& ep : c.endpoints) {
    ojson e;
    e["address"] = ep.address.str();
    e["port"] = ep.port;
    if (ep.weight != 1) e["weight"] = ep.weight;
    if (!ep.labels.empty()) e["labels"] = ep.labels;
    endpoints.push_back(std::move(e));
  }
  const CircuitBreakerThresholds& t = c.circuit_breakers;
  const CircuitBreakerThresholds& dt = defaults.circuit_breakers;
  ojson cb = ojson::object();
  if (t.max_connections != dt.max_connections) cb["max_connections"] = t.max_connections;
  if (t.max_pending_requests != dt.max_pending_requests)
    cb["max_pending_requests"] = t.max_pending_requests;
  if (t.max_requests != dt.max_requests) cb["max_requests"] = t.max_requests;
  if (t.max_retries != dt.max_retries) cb["max_retries"] = t.max_retries;
  if (t.retry_budget) {
    const RetryBudget db;
    ojson rb = ojson::object();
    if (t.retry_budget->budget_percent != db.budget_percent)
      rb["budget_percent"] = t.retry_budget->budget_percent;
    if (t.retry_budget->min_retry_concurrency != db.min_retry_concurrency)
      rb["min_retry_concurrency"] = t.retry_budget->min_retry_concurrency;
    cb["retry_budget"] = std::move(rb);
  }
  if (!cb.empty()) j["circuit_breakers"] = std::move(cb);
  ojson od = ojson::object();
  const OutlierDetectionConfig& o = c.outlier_detection;
  if (o.consecutive_local_origin_failure !=
      defaults.outlier_detection.consecutive_local_origin_failure)
    od["consecutive_local_origin_failure"] = o.consecutive_local_origin_failure;
  const OutlierDetectionConfig& dod = defaults.outlier_detection;
  if (o.consecutive_5xx != dod.consecutive_5xx) od["consecutive_5xx"] = o.consecutive_5xx;
  if (o.consecutive_gateway_failure != dod.consecutive_gateway_failure)
    od["consecutive_gateway_failure"] = o.consecutive_gateway_failure;
  if (o.interval != dod.interval) od["interval"] = format_duration(o.interval);
  if (o.base_ejection_time != dod.base_ejection_time)
    od["base_ejection_time"] = format_duration(o.base_ejection_time);
  if (o.max_ejection_time != dod.max_ejection_time)
    od["max_ejection_time"] = format_duration(o.max_ejection_time);
  if (o.max_ejection_percent != dod.max_ejection_percent)
    od["max_ejection_percent"] = o.max_ejection_percent;
  if (!od.empty()) j["outlier_detection"] = std::move(od);
  if (c.healthy_panic_threshold != defaults.healthy_panic_threshold)
    j["healthy_panic_threshold"] = c.healthy_panic_threshold;
  if (c.max_requests_per_connection != defaults.max_requests_per_connection)
    j["max_requests_per_connection"] = c.max_requests_per_connection;
  if (c.idle_timeout != defaults.idle_timeout) j["idle_timeout"] = format_duration(c.idle_timeout);
  return j;
}

}  // namespace

Result<RouteConfig> parse_route_config(std::string_view json_text) {
  RouteConfig config;
  try {
    config = parse_root(json::parse(json_text));
  } catch (const json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep line and column.
    std::string what = e.what();
    if (size_t tag = what.find("] "); tag != std::string::npos) what.erase(0, tag + 2);
    return plain_error("invalid JSON: " + what);
  } catch (const ConfigError& e) {
    return plain_error(e.what());
  } catch (const std::exception& e) {
    return plain_error(std::string("route config: ") + e.what());
  }
  if (Status s = validate_route_config(config); !s) return s.error();
  return config;
}

Result<RouteConfig> load_route_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return errno_error("read " + path);
  auto config = parse_route_config(text.str());
  if (!config) return plain_error(path + ": " + config.error().message());
  return config;
}

std::string dump_route_config(const RouteConfig& config) {
  ojson j;
  ojson& vhosts = j["virtual_hosts"] = ojson::array();
  for (const auto& vh : config.virtual_hosts) {
    ojson v;
    v["name"] = vh.name;
    v["domains"] = vh.domains;
    ojson& routes = v["routes"] = ojson::array();
    for (const auto& r : vh.routes) routes.push_back(dump_route(r));
    vhosts.push_back(std::move(v));
  }
  ojson& clusters = j["clusters"] = ojson::array();
  for (const auto& c : config.clusters) clusters.push_back(dump_cluster(c));
  return j.dump(2) + "\n";
}

}  // namespace sm::route
