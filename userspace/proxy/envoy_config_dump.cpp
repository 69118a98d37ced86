// Envoy-shaped /config_dump; see envoy_config_dump.h. Field names and nesting follow Envoy's
// v3 protos (tests/unit/proxy/fixtures/envoy_proto_schema.json is checked against every key
// this file prints). Like Envoy's admin, a field at its proto default is left out.
#include "proxy/envoy_config_dump.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "route/retry_policy.h"

namespace sm::proxy {
namespace {

using ojson = nlohmann::ordered_json;
constexpr const char* kTypePrefix = "type.googleapis.com/";

std::string type_url(std::string_view message) {
  return kTypePrefix + std::string(message);
}

std::string dur(route::Duration d) {
  return route::format_duration(d);
}

ojson socket_address(const std::string& address, uint16_t port, bool ipv4_compat = false) {
  ojson sa = {{"address", address}, {"port_value", port}};
  if (ipv4_compat) sa["ipv4_compat"] = true;
  return {{"socket_address", std::move(sa)}};
}

// envoy.type.v3.FractionalPercent from 0..100: whole percents as HUNDRED (the default
// denominator, so not printed), anything finer in millionths.
ojson fractional_percent(double percent) {
  if (percent == std::floor(percent)) return {{"numerator", static_cast<uint32_t>(percent)}};
  return {{"numerator", static_cast<uint32_t>(std::lround(percent * 10'000))},
          {"denominator", "MILLION"}};
}

ojson listener(const ListenerDescription& l) {
  ojson j = {{"@type", type_url("envoy.config.listener.v3.Listener")},
             {"name", l.name},
             {"address", socket_address(l.address, l.port, l.ipv4_compat)}};
  // Both listeners learn where a connection was going: outbound from SO_ORIGINAL_DST (the
  // BPF getsockopt hook or conntrack), inbound from getsockname() after sk_lookup.
  j["listener_filters"] = ojson::array(
      {{{"name", "envoy.filters.listener.original_dst"},
        {"typed_config",
         {{"@type", type_url("envoy.extensions.filters.listener.original_dst.v3.OriginalDst")}}}}});
  j["traffic_direction"] = l.outbound ? "OUTBOUND" : "INBOUND";
  if (l.outbound) {
    // HTTP is routed by the table (RoutesConfigDump); other bytes pass through.
    ojson hcm = {{"@type", type_url("envoy.extensions.filters.network.http_connection_manager."
                                    "v3.HttpConnectionManager")},
                 {"stat_prefix", l.name},
                 {"rds", {{"route_config_name", kRouteConfigName}}}};
    j["filter_chains"] = ojson::array(
        {{{"filters", ojson::array({{{"name", "envoy.filters.network.http_connection_manager"},
                                     {"typed_config", std::move(hcm)}}})}}});
  }
  return j;
}

ojson header_matcher(const route::HeaderMatcherConfig& h) {
  using Kind = route::HeaderMatcherConfig::Kind;
  ojson j = {{"name", h.name}};
  switch (h.kind) {
    case Kind::exact:
      j["string_match"] = {{"exact", h.value}};
      break;
    case Kind::prefix:
      j["string_match"] = {{"prefix", h.value}};
      break;
    case Kind::suffix:
      j["string_match"] = {{"suffix", h.value}};
      break;
    case Kind::regex:
      j["string_match"] = {{"safe_regex", {{"regex", h.value}}}};
      break;
    case Kind::present:
      j["present_match"] = h.present;
      break;
  }
  if (h.invert) j["invert_match"] = true;
  return j;
}

ojson route_match(const route::RouteMatchConfig& m) {
  using PathKind = route::RouteMatchConfig::PathKind;
  ojson j = ojson::object();
  switch (m.kind) {
    case PathKind::prefix:
      j["prefix"] = m.value;
      break;
    case PathKind::path:
      j["path"] = m.value;
      break;
    case PathKind::regex:
      j["safe_regex"] = {{"regex", m.value}};
      break;
  }
  if (!m.case_sensitive) j["case_sensitive"] = false;
  if (!m.headers.empty()) {
    j["headers"] = ojson::array();
    for (const auto& h : m.headers) j["headers"].push_back(header_matcher(h));
  }
  return j;
}

ojson retry_policy(const route::RetryPolicy& p) {
  ojson j = ojson::object();
  if (p.retry_on) j["retry_on"] = route::format_retry_on(p.retry_on);
  j["num_retries"] = p.num_retries;
  if (p.per_try_timeout.count()) j["per_try_timeout"] = dur(p.per_try_timeout);
  if (!p.retriable_status_codes.empty()) j["retriable_status_codes"] = p.retriable_status_codes;
  j["retry_back_off"] = {{"base_interval", dur(p.base_interval)},
                         {"max_interval", dur(p.max_interval)}};
  return j;
}

ojson fault(const route::FaultConfig& f) {
  ojson j = {{"@type", type_url("envoy.extensions.filters.http.fault.v3.HTTPFault")}};
  if (f.delay)
    j["delay"] = {{"fixed_delay", dur(f.delay->fixed_delay)},
                  {"percentage", fractional_percent(f.delay->percent)}};
  if (f.abort)
    j["abort"] = {{"http_status", f.abort->http_status},
                  {"percentage", fractional_percent(f.abort->percent)}};
  return j;
}

ojson route_entry(const route::RouteEntryConfig& r) {
  ojson j = ojson::object();
  if (!r.name.empty()) j["name"] = r.name;
  j["match"] = route_match(r.match);
  const auto& a = r.action;
  ojson action = ojson::object();
  if (!a.weighted_clusters.empty()) {
    ojson clusters = ojson::array();
    for (const auto& w : a.weighted_clusters)
      clusters.push_back({{"name", w.name}, {"weight", w.weight}});
    action["weighted_clusters"] = {{"clusters", std::move(clusters)}};
  } else {
    action["cluster"] = a.cluster;
  }
  // Printed even at Envoy's default (15s): a route's timeout is what one looks for.
  action["timeout"] = dur(a.timeout);
  if (a.retry_policy) action["retry_policy"] = retry_policy(*a.retry_policy);
  if (a.prefix_rewrite) action["prefix_rewrite"] = *a.prefix_rewrite;
  if (a.host_rewrite) action["host_rewrite_literal"] = *a.host_rewrite;
  j["route"] = std::move(action);
  if (a.fault) j["typed_per_filter_config"] = {{"envoy.filters.http.fault", fault(*a.fault)}};
  return j;
}

ojson route_configuration(const route::RouteConfig& c) {
  ojson vhosts = ojson::array();
  for (const auto& vh : c.virtual_hosts) {
    ojson routes = ojson::array();
    for (const auto& r : vh.routes) routes.push_back(route_entry(r));
    vhosts.push_back({{"name", vh.name}, {"domains", vh.domains}, {"routes", std::move(routes)}});
  }
  return {{"@type", type_url("envoy.config.route.v3.RouteConfiguration")},
          {"name", kRouteConfigName},
          {"virtual_hosts", std::move(vhosts)}};
}

const char* lb_policy(route::LbPolicy p) {
  switch (p) {
    case route::LbPolicy::least_request:
      return "LEAST_REQUEST";
    case route::LbPolicy::random:
      return "RANDOM";
    case route::LbPolicy::round_robin:
      break;
  }
  return nullptr;  // ROUND_ROBIN, the default: not printed
}

// Our detector in Envoy's fields. 5xx and gateway failures are enforced only when configured
// (our 0 means off, Envoy's unset means 5 for consecutive_5xx).
ojson outlier_detection(const route::OutlierDetectionConfig& o) {
  ojson j = ojson::object();
  if (o.consecutive_5xx) {
    j["consecutive_5xx"] = o.consecutive_5xx;
  } else {
    j["enforcing_consecutive_5xx"] = 0;
  }
  j["interval"] = dur(o.interval);
  j["base_ejection_time"] = dur(o.base_ejection_time);
  j["max_ejection_percent"] = o.max_ejection_percent;
  if (o.consecutive_gateway_failure) {
    j["consecutive_gateway_failure"] = o.consecutive_gateway_failure;
    j["enforcing_consecutive_gateway_failure"] = 100;
  }
  j["consecutive_local_origin_failure"] = o.consecutive_local_origin_failure;
  j["max_ejection_time"] = dur(o.max_ejection_time);
  return j;
}

ojson cluster(const route::ClusterConfig& c) {
  ojson j = {{"@type", type_url("envoy.config.cluster.v3.Cluster")},
             {"name", c.name},
             {"type", "STATIC"},
             {"connect_timeout", dur(c.connect_timeout)}};
  if (const char* lb = lb_policy(c.lb_policy)) j["lb_policy"] = lb;
  const auto& cb = c.circuit_breakers;
  ojson t = {{"max_connections", cb.max_connections},
             {"max_pending_requests", cb.max_pending_requests},
             {"max_requests", cb.max_requests},
             {"max_retries", cb.max_retries}};
  if (cb.retry_budget)
    t["retry_budget"] = {{"budget_percent", {{"value", cb.retry_budget->budget_percent}}},
                         {"min_retry_concurrency", cb.retry_budget->min_retry_concurrency}};
  j["circuit_breakers"] = {{"thresholds", ojson::array({std::move(t)})}};
  j["outlier_detection"] = outlier_detection(c.outlier_detection);
  j["common_lb_config"] = {
      {"healthy_panic_threshold", {{"value", static_cast<double>(c.healthy_panic_threshold)}}}};
  ojson common = {{"idle_timeout", dur(c.idle_timeout)}};
  if (c.max_requests_per_connection)
    common["max_requests_per_connection"] = c.max_requests_per_connection;
  j["typed_extension_protocol_options"] = {
      {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
       {{"@type", type_url("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")},
        {"common_http_protocol_options", std::move(common)},
        {"explicit_http_config", {{"http_protocol_options", ojson::object()}}}}}};
  ojson lb_endpoints = ojson::array();
  for (const auto& e : c.endpoints) {
    ojson le = {{"endpoint", {{"address", socket_address(e.address.str(), e.port)}}}};
    if (!e.labels.empty()) le["metadata"] = {{"filter_metadata", {{"envoy.lb", e.labels}}}};
    le["load_balancing_weight"] = e.weight;
    lb_endpoints.push_back(std::move(le));
  }
  ojson endpoints = ojson::array();
  if (!lb_endpoints.empty()) endpoints.push_back({{"lb_endpoints", std::move(lb_endpoints)}});
  j["load_assignment"] = {{"cluster_name", c.name}, {"endpoints", std::move(endpoints)}};
  return j;
}

// One top-level dump: its message name and its repeated resources, each element already
// wrapped as Envoy's (e.g. DynamicCluster {version_info, cluster}).
struct Dump {
  const char* message;  // "envoy.admin.v3.ClustersConfigDump"
  std::vector<std::pair<std::string, std::vector<ojson>>> fields;  // in proto order
};

std::vector<Dump> build(const ConfigDumpSource& s) {
  std::vector<ojson> static_listeners, clusters, routes;
  for (const auto& l : s.listeners) static_listeners.push_back({{"listener", listener(l)}});
  if (s.routes) {
    for (const auto& c : s.routes->clusters)
      clusters.push_back({{"version_info", s.version_info}, {"cluster", cluster(c)}});
    routes.push_back(
        {{"version_info", s.version_info}, {"route_config", route_configuration(*s.routes)}});
  }
  // Envoy's order: clusters, listeners, routes.
  return {
      {"envoy.admin.v3.ClustersConfigDump", {{"dynamic_active_clusters", std::move(clusters)}}},
      {"envoy.admin.v3.ListenersConfigDump", {{"static_listeners", std::move(static_listeners)}}},
      {"envoy.admin.v3.RoutesConfigDump", {{"dynamic_route_configs", std::move(routes)}}}};
}

// The message type of one element of a repeated resource, as Envoy labels it with ?resource=.
std::string element_type(const Dump& d, const std::string& field) {
  static const std::map<std::string, std::string> kElement = {
      {"static_listeners", "StaticListener"},         {"dynamic_listeners", "DynamicListener"},
      {"static_clusters", "StaticCluster"},           {"dynamic_active_clusters", "DynamicCluster"},
      {"dynamic_warming_clusters", "DynamicCluster"}, {"static_route_configs", "StaticRouteConfig"},
      {"dynamic_route_configs", "DynamicRouteConfig"}};
  return type_url(std::string(d.message) + "." + kElement.at(field));
}

// The name Envoy's ?name_regex= matches for an element: the listener's, the cluster's, the
// route configuration's.
std::string element_name(const ojson& e) {
  for (const char* inner : {"listener", "cluster", "route_config"})
    if (e.contains(inner)) return e[inner].value("name", "");
  return "";
}

// A FieldMask as a tree of path components.
struct MaskNode {
  std::map<std::string, MaskNode> kids;
  bool whole = false;  // the path ends here: keep everything below
};

MaskNode parse_mask(const std::string& mask) {
  MaskNode root;
  size_t start = 0;
  while (start <= mask.size()) {
    size_t end = mask.find(',', start);
    if (end == std::string::npos) end = mask.size();
    std::string path = mask.substr(start, end - start);
    MaskNode* n = &root;
    size_t p = 0;
    while (!path.empty() && p <= path.size()) {
      size_t dot = path.find('.', p);
      if (dot == std::string::npos) dot = path.size();
      n = &n->kids[path.substr(p, dot - p)];
      p = dot + 1;
    }
    if (n != &root) n->whole = true;
    start = end + 1;
  }
  return root;
}

// Keeps what the mask names; through an array the mask applies to each element, and "@type"
// stays (Envoy trims inside an Any and keeps its type).
void trim(ojson& j, const MaskNode& mask) {
  if (mask.whole) return;
  if (j.is_array()) {
    for (auto& e : j) trim(e, mask);
    return;
  }
  if (!j.is_object()) return;
  ojson kept = ojson::object();
  for (auto& [key, value] : j.items()) {
    if (key == "@type") {
      kept[key] = value;
      continue;
    }
    auto it = mask.kids.find(key);
    if (it == mask.kids.end()) continue;
    trim(value, it->second);
    kept[key] = std::move(value);
  }
  j = std::move(kept);
}

}  // namespace

ConfigDumpAnswer envoy_config_dump(const ConfigDumpSource& source,
                                   const std::map<std::string, std::string>& query) {
  auto param = [&](const char* k) -> const std::string* {
    auto it = query.find(k);
    return it == query.end() ? nullptr : &it->second;
  };
  static const std::set<std::string> kResources = {
      "static_listeners",        "dynamic_listeners",        "static_clusters",
      "dynamic_active_clusters", "dynamic_warming_clusters", "static_route_configs",
      "dynamic_route_configs"};
  static const std::set<std::string> kDumpFields = [] {
    std::set<std::string> f = kResources;
    f.insert("version_info");
    return f;
  }();
  // The fields of StaticListener, DynamicListener, Static/DynamicCluster,
  // Static/DynamicRouteConfig.
  static const std::set<std::string> kElementFields = {
      "version_info", "listener",      "cluster",        "route_config", "last_updated", "name",
      "active_state", "warming_state", "draining_state", "error_state",  "client_status"};
  std::optional<std::regex> name_regex;
  if (const std::string* r = param("name_regex")) {
    try {
      name_regex.emplace(*r, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return {400, "name_regex: invalid regex '" + *r + "': " + e.what() + "\n"};
    }
  }
  std::optional<MaskNode> mask;
  if (const std::string* m = param("mask")) {
    mask = parse_mask(*m);
    if (mask->kids.empty()) return {400, "mask: no field path given\n"};
  }
  auto wanted = [&](const ojson& e) {
    return !name_regex || std::regex_search(element_name(e), *name_regex);
  };

  const std::string* resource = param("resource");
  if (resource && !kResources.contains(*resource))
    return {404, "resource: '" + *resource +
                     "' is not a repeated field of ListenersConfigDump, ClustersConfigDump or "
                     "RoutesConfigDump\n"};
  if (mask) {
    // Envoy checks a mask against the message it trims; we check each path's first field
    // against the fields of the messages it applies to (deeper fields may simply be absent).
    const auto& fields = resource ? kElementFields : kDumpFields;
    for (const auto& [first, node] : mask->kids)
      if (!fields.contains(first))
        return {400, "mask: '" + first + "' is not a field of " +
                         (resource ? "a " + *resource + " element" : std::string("a config dump")) +
                         "\n"};
  }

  ojson configs = ojson::array();
  for (auto& d : build(source)) {
    if (resource) {
      for (auto& [field, elements] : d.fields) {
        if (field != *resource) continue;
        for (auto& e : elements) {
          if (!wanted(e)) continue;
          ojson typed = {{"@type", element_type(d, field)}};
          for (auto& [k, v] : e.items()) typed[k] = std::move(v);
          if (mask) trim(typed, *mask);
          configs.push_back(std::move(typed));
        }
      }
      continue;
    }
    ojson dump = {{"@type", type_url(d.message)}};
    for (auto& [field, elements] : d.fields) {
      ojson kept = ojson::array();
      for (auto& e : elements)
        if (wanted(e)) kept.push_back(std::move(e));
      if (!kept.empty()) dump[field] = std::move(kept);
    }
    if (mask) trim(dump, *mask);
    configs.push_back(std::move(dump));
  }
  return {200, ojson{{"configs", std::move(configs)}}.dump(2) + "\n"};
}

}  // namespace sm::proxy
