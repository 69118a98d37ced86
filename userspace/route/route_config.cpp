// Semantic checks of a RouteConfig; see route_config.h. Run by the JSON loader and again by
// RouteTable::build, so a config assembled in code (the Consul watcher) gets the same checks.
#include "route/route_config.h"

#include <set>
#include <unordered_map>
#include <unordered_set>

#include "route/ascii_case.h"
#include "sockmesh/net.h"

namespace sm::route {
namespace {

std::string at(std::string_view base, size_t i) {
  std::string s(base);
  s += '[';
  s += std::to_string(i);
  s += ']';
  return s;
}

Error field_error(const std::string& path, std::string_view why) {
  return plain_error(path + ": " + std::string(why));
}

// Envoy accepts one '*' at either end ("*.consul", "reviews.*") or "*" alone; nothing that
// could be mistaken for a pattern in the middle, and no whitespace or control characters.
Status check_domain(const std::string& domain, const std::string& path) {
  if (domain.empty()) return field_error(path, "must not be empty");
  for (char c : domain) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return field_error(path, "'" + domain + "': whitespace or control character in domain");
  }
  size_t star = domain.find('*');
  if (star == std::string::npos) return {};
  if (domain.find('*', star + 1) != std::string::npos || (star != 0 && star != domain.size() - 1))
    return field_error(path,
                       "'" + domain + "': a wildcard must be a single '*' at the start or the end");
  return {};
}

Status check_retry_policy(const RetryPolicy& p, const std::string& path) {
  for (size_t i = 0; i < p.retriable_status_codes.size(); ++i) {
    uint16_t code = p.retriable_status_codes[i];
    if (code < 100 || code > 599)
      return field_error(at(path + ".retriable_status_codes", i), "must be 100..599");
  }
  if (p.base_interval.count() <= 0)
    return field_error(path + ".retry_back_off.base_interval", "must be greater than 0s");
  if (p.max_interval < p.base_interval)
    return field_error(path + ".retry_back_off.max_interval", "must be >= base_interval");
  return {};
}

Status check_regex(const std::string& pattern, const std::string& path) {
  if (auto r = compile_regex(pattern, false); !r) return field_error(path, r.error().message());
  return {};
}

bool percent_ok(double p) {
  return p >= 0.0 && p <= 100.0;
}

Status check_fault(const FaultConfig& f, const std::string& path) {
  if (!f.delay && !f.abort) return field_error(path, "needs delay or abort");
  if (f.delay) {
    if (f.delay->fixed_delay.count() < 0)
      return field_error(path + ".delay.fixed_delay", "must not be negative");
    if (!percent_ok(f.delay->percent))
      return field_error(path + ".delay.percent", "must be 0..100");
  }
  if (f.abort) {
    if (f.abort->http_status < 200 || f.abort->http_status > 599)
      return field_error(path + ".abort.http_status", "must be 200..599");
    if (!percent_ok(f.abort->percent))
      return field_error(path + ".abort.percent", "must be 0..100");
  }
  return {};
}

// Values that go into a request head as they are (a Host value, a request-target): only
// visible ASCII, so a config cannot inject a header or split a request line.
Status check_head_value(const std::optional<std::string>& v, const std::string& path) {
  if (!v) return {};
  if (v->empty()) return field_error(path, "must not be empty");
  for (char ch : *v) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f)
      return field_error(path, "must not contain spaces, control characters or non-ASCII bytes");
  }
  return {};
}

Status check_route(const RouteEntryConfig& r, const std::string& path,
                   const std::unordered_set<std::string_view>& clusters) {
  if (r.match.kind == RouteMatchConfig::PathKind::regex) {
    if (Status s = check_regex(r.match.value, path + ".match.safe_regex"); !s) return s;
  }
  for (size_t h = 0; h < r.match.headers.size(); ++h) {
    const std::string hpath = at(path + ".match.headers", h);
    if (r.match.headers[h].name.empty()) return field_error(hpath + ".name", "must not be empty");
    if (r.match.headers[h].kind == HeaderMatcherConfig::Kind::regex) {
      if (Status s = check_regex(r.match.headers[h].value, hpath + ".safe_regex_match"); !s)
        return s;
    }
  }
  const RouteActionConfig& a = r.action;
  const std::string apath = path + ".route";
  if (a.cluster.empty() == a.weighted_clusters.empty())
    return field_error(apath, "needs exactly one of cluster, weighted_clusters");
  if (!a.cluster.empty() && !clusters.count(a.cluster))
    return field_error(apath + ".cluster", "unknown cluster '" + a.cluster + "'");
  uint64_t total = 0;
  for (size_t w = 0; w < a.weighted_clusters.size(); ++w) {
    const WeightedClusterConfig& wc = a.weighted_clusters[w];
    const std::string wpath = at(apath + ".weighted_clusters.clusters", w);
    if (!clusters.count(wc.name))
      return field_error(wpath + ".name", "unknown cluster '" + wc.name + "'");
    total += wc.weight;
  }
  if (!a.weighted_clusters.empty() && total == 0)
    return field_error(apath + ".weighted_clusters", "weights must add up to more than 0");
  if (a.timeout.count() < 0) return field_error(apath + ".timeout", "must not be negative");
  if (Status s = check_head_value(a.host_rewrite, apath + ".host_rewrite"); !s) return s;
  if (Status s = check_head_value(a.prefix_rewrite, apath + ".prefix_rewrite"); !s) return s;
  if (a.retry_policy) {
    if (Status s = check_retry_policy(*a.retry_policy, apath + ".retry_policy"); !s) return s;
  }
  if (a.fault) {
    if (Status s = check_fault(*a.fault, apath + ".fault"); !s) return s;
  }
  return {};
}

Status check_cluster(const ClusterConfig& c, const std::string& path) {
  if (c.name.empty()) return field_error(path + ".name", "must not be empty");
  if (c.connect_timeout.count() <= 0)
    return field_error(path + ".connect_timeout", "must be greater than 0s");
  if (c.healthy_panic_threshold > 100)
    return field_error(path + ".healthy_panic_threshold", "must be 0..100");
  if (c.circuit_breakers.retry_budget) {
    double pct = c.circuit_breakers.retry_budget->budget_percent;
    if (!(pct >= 0.0 && pct <= 100.0))
      return field_error(path + ".circuit_breakers.retry_budget.budget_percent", "must be 0..100");
  }
  const OutlierDetectionConfig& od = c.outlier_detection;
  const std::string opath = path + ".outlier_detection";
  if (od.interval.count() <= 0) return field_error(opath + ".interval", "must be greater than 0s");
  if (od.base_ejection_time.count() <= 0)
    return field_error(opath + ".base_ejection_time", "must be greater than 0s");
  if (od.max_ejection_time < od.base_ejection_time)
    return field_error(opath + ".max_ejection_time", "must be >= base_ejection_time");
  if (od.max_ejection_percent > 100)
    return field_error(opath + ".max_ejection_percent", "must be 0..100");
  std::set<std::pair<IpAddr, uint16_t>> seen;
  for (size_t e = 0; e < c.endpoints.size(); ++e) {
    const EndpointConfig& ep = c.endpoints[e];
    const std::string epath = at(path + ".endpoints", e);
    if (ep.address.is_unspecified())
      return field_error(epath + ".address", "must not be " + ep.address.str());
    if (ep.port == 0) return field_error(epath + ".port", "must be 1..65535");
    if (ep.weight == 0) return field_error(epath + ".weight", "must be at least 1");
    if (!seen.emplace(ep.address, ep.port).second)
      return field_error(epath, "duplicate endpoint " + endpoint_str(ep.address, ep.port));
  }
  return {};
}

}  // namespace

Result<std::regex> compile_regex(const std::string& pattern, bool icase) {
  try {
    auto flags = std::regex::ECMAScript | std::regex::optimize;
    if (icase) flags |= std::regex::icase;
    return std::regex(pattern, flags);
  } catch (const std::regex_error& e) {
    return plain_error("invalid regex '" + pattern + "': " + e.what());
  }
}

Status validate_route_config(const RouteConfig& config) {
  std::unordered_set<std::string_view> clusters;
  for (size_t i = 0; i < config.clusters.size(); ++i) {
    const std::string path = at("clusters", i);
    if (Status s = check_cluster(config.clusters[i], path); !s) return s;
    if (!clusters.insert(config.clusters[i].name).second)
      return field_error(path + ".name", "duplicate cluster '" + config.clusters[i].name + "'");
  }

  std::unordered_set<std::string_view> vhost_names;
  std::unordered_map<std::string, std::string> domain_owner;  // lowercased domain -> path
  for (size_t v = 0; v < config.virtual_hosts.size(); ++v) {
    const VirtualHostConfig& vh = config.virtual_hosts[v];
    const std::string path = at("virtual_hosts", v);
    if (vh.name.empty()) return field_error(path + ".name", "must not be empty");
    if (!vhost_names.insert(vh.name).second)
      return field_error(path + ".name", "duplicate virtual host '" + vh.name + "'");
    if (vh.domains.empty()) return field_error(path + ".domains", "must not be empty");
    for (size_t d = 0; d < vh.domains.size(); ++d) {
      const std::string dpath = at(path + ".domains", d);
      if (Status s = check_domain(vh.domains[d], dpath); !s) return s;
      auto [it, fresh] = domain_owner.emplace(lower_copy(vh.domains[d]), dpath);
      if (!fresh)
        return field_error(dpath,
                           "duplicate domain '" + vh.domains[d] + "' (also " + it->second + ")");
    }
    for (size_t r = 0; r < vh.routes.size(); ++r) {
      if (Status s = check_route(vh.routes[r], at(path + ".routes", r), clusters); !s) return s;
    }
  }
  return {};
}

}  // namespace sm::route
