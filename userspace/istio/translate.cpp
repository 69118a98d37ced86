// Catalog + rules -> RouteConfig; see translate.h.
#include "istio/translate.h"

#include <algorithm>
#include <set>

#include "route/retry_policy.h"

namespace sm::istio {
namespace {

const std::string kDomain = ".service.consul";

// A rule's host -> the service it names: "reviews", "reviews.service",
// "reviews.service.consul" -> "reviews"; "" for anything else. Wildcards are handled apart.
std::string service_of_host(std::string h) {
  if (!h.empty() && h.back() == '.') h.pop_back();
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (h.ends_with(kDomain))
    h.resize(h.size() - kDomain.size());
  else if (h.ends_with(".service"))
    h.resize(h.size() - std::string(".service").size());
  if (h.empty() || h.find('.') != std::string::npos || h.find('*') != std::string::npos) return "";
  return h;
}

bool is_mesh_wildcard(const std::string& h) {
  return h == "*" || h == "*.consul" || h == "*.service.consul";
}

class Translator {
 public:
  Translator(const MeshCatalog& catalog, const RuleSet& rules, const TranslateOptions& options)
      : catalog_(catalog), rules_(rules), options_(options) {}

  Translation run() {
    index_rules();
    for (const auto& [name, svc] : catalog_) {
      if (svc.port == 0) continue;
      add_service_clusters(name, svc);
    }
    for (const auto& [name, svc] : catalog_) {
      if (svc.port == 0) continue;
      add_virtual_host(name, svc);
    }
    return {std::move(config_), std::move(notes_)};
  }

 private:
  void note(std::string text) {
    if (std::find(notes_.begin(), notes_.end(), text) == notes_.end())
      notes_.push_back(std::move(text));
  }

  // Which VirtualService and DestinationRule apply to each service: an exact host beats a
  // wildcard; between equals the first loaded wins (Istio: the oldest), the rest are noted.
  void index_rules() {
    for (const VirtualService& vs : rules_.virtual_services) {
      for (const std::string& h : vs.hosts) {
        if (is_mesh_wildcard(h)) {
          if (!wildcard_vs_) wildcard_vs_ = &vs;
          continue;
        }
        const std::string s = service_of_host(h);
        if (s.empty() || !catalog_.count(s)) {
          note(vs.source + " VirtualService " + vs.name + ": host " + h +
               ": no such service in Consul (yet)");
          continue;
        }
        auto [it, fresh] = vs_by_service_.emplace(s, &vs);
        if (!fresh && it->second != &vs)
          note(vs.source + " VirtualService " + vs.name + ": host " + h + " is also claimed by " +
               it->second->name + "; ignored here");
      }
    }
    for (const DestinationRule& dr : rules_.destination_rules) {
      if (is_mesh_wildcard(dr.host)) {
        if (!wildcard_dr_) wildcard_dr_ = &dr;
        continue;
      }
      const std::string s = service_of_host(dr.host);
      if (s.empty() || !catalog_.count(s)) {
        note(dr.source + " DestinationRule " + dr.name + ": host " + dr.host +
             ": no such service in Consul (yet)");
        continue;
      }
      auto [it, fresh] = dr_by_service_.emplace(s, &dr);
      if (!fresh && it->second != &dr)
        note(dr.source + " DestinationRule " + dr.name + ": host " + dr.host +
             " is also claimed by " + it->second->name + "; ignored");
    }
  }

  const DestinationRule* rule_for(const std::string& service) const {
    auto it = dr_by_service_.find(service);
    return it != dr_by_service_.end() ? it->second : wildcard_dr_;
  }
  const VirtualService* vs_for(const std::string& service) const {
    auto it = vs_by_service_.find(service);
    return it != vs_by_service_.end() ? it->second : wildcard_vs_;
  }

  static void apply_policy(const TrafficPolicy& p, route::ClusterConfig& c) {
    if (p.load_balancer) {
      switch (*p.load_balancer) {
        case LoadBalancer::round_robin:
          c.lb_policy = route::LbPolicy::round_robin;
          break;
        case LoadBalancer::least_request:
          c.lb_policy = route::LbPolicy::least_request;
          break;
        case LoadBalancer::random:
          c.lb_policy = route::LbPolicy::random;
          break;
      }
    }
    if (p.connection_pool) {
      const ConnectionPool& cp = *p.connection_pool;
      route::CircuitBreakerThresholds& t = c.circuit_breakers;
      if (cp.max_connections) t.max_connections = *cp.max_connections;
      if (cp.http1_max_pending) t.max_pending_requests = *cp.http1_max_pending;
      if (cp.http2_max_requests) t.max_requests = *cp.http2_max_requests;
      if (cp.max_retries) t.max_retries = *cp.max_retries;
      if (cp.max_requests_per_connection)
        c.max_requests_per_connection = *cp.max_requests_per_connection;
      if (cp.connect_timeout && cp.connect_timeout->count() > 0)
        c.connect_timeout = *cp.connect_timeout;
      if (cp.idle_timeout) c.idle_timeout = *cp.idle_timeout;
    }
    if (p.outlier_detection) {
      // Istio's reading: Envoy's defaults for what is left out (5 consecutive 5xx, 10s
      // interval, 30s base ejection, 10% max ejection), minHealthPercent as the panic
      // threshold (0 by default), local-origin errors counted as 5xx (not split).
      const OutlierDetection& o = *p.outlier_detection;
      route::OutlierDetectionConfig& od = c.outlier_detection;
      od.consecutive_5xx = o.consecutive_5xx.value_or(5);
      od.consecutive_gateway_failure = o.consecutive_gateway.value_or(0);
      od.consecutive_local_origin_failure = o.consecutive_local_origin.value_or(0);
      od.interval = o.interval.value_or(std::chrono::seconds(10));
      od.base_ejection_time = o.base_ejection_time.value_or(std::chrono::seconds(30));
      if (od.interval.count() <= 0) od.interval = std::chrono::seconds(10);
      if (od.base_ejection_time.count() <= 0) od.base_ejection_time = std::chrono::seconds(30);
      od.max_ejection_time =
          std::max<route::Duration>(od.base_ejection_time, std::chrono::seconds(300));
      od.max_ejection_percent = o.max_ejection_percent.value_or(10);
      c.healthy_panic_threshold = o.min_health_percent.value_or(0);
    }
  }

  // Endpoints carry their labels on the service's own cluster only: a subset cluster's
  // endpoints are a selection by labels already (and 10,000 endpoints' label maps copied
  // twice cost a rebuild measurable time).
  route::ClusterConfig make_cluster(const std::string& name, const consul::Instances& instances,
                                    const std::map<std::string, std::string>& selector,
                                    bool with_labels) {
    route::ClusterConfig c;
    c.name = name;
    for (const consul::Instance& i : instances) {
      bool selected = std::all_of(selector.begin(), selector.end(), [&](const auto& kv) {
        auto it = i.labels.find(kv.first);
        return it != i.labels.end() && it->second == kv.second;
      });
      if (!selected) continue;
      route::EndpointConfig ep;
      ep.address = i.address;
      ep.port = i.port;
      ep.weight = i.weight;
      if (with_labels) ep.labels = i.labels;
      // Two registrations of one address:port (re-registered under a new ID) are one endpoint.
      bool dup = std::any_of(c.endpoints.begin(), c.endpoints.end(), [&](const auto& e) {
        return e.address == ep.address && e.port == ep.port;
      });
      if (!dup) c.endpoints.push_back(std::move(ep));
    }
    return c;
  }

  void add_service_clusters(const std::string& service, const MeshService& svc) {
    const DestinationRule* dr = rule_for(service);
    const TrafficPolicy top = dr && dr->traffic_policy ? *dr->traffic_policy : TrafficPolicy{};
    route::ClusterConfig main =
        make_cluster(cluster_name(service, svc.port, ""), svc.instances, {}, true);
    apply_policy(top, main);
    config_.clusters.push_back(std::move(main));

    std::set<std::string>& subsets = subsets_[service];
    // DestinationRule subsets first, so they win over version-derived ones of the same name.
    if (dr) {
      for (const Subset& s : dr->subsets) {
        route::ClusterConfig c =
            make_cluster(cluster_name(service, svc.port, s.name), svc.instances, s.labels, false);
        TrafficPolicy p = top;
        if (s.traffic_policy) {
          if (s.traffic_policy->load_balancer) p.load_balancer = s.traffic_policy->load_balancer;
          if (s.traffic_policy->connection_pool)
            p.connection_pool = s.traffic_policy->connection_pool;
          if (s.traffic_policy->outlier_detection)
            p.outlier_detection = s.traffic_policy->outlier_detection;
        }
        apply_policy(p, c);
        if (c.endpoints.empty())
          note(dr->source + " DestinationRule " + dr->name + ": subset " + s.name +
               ": no passing instance of " + service + " has its labels");
        subsets.insert(s.name);
        config_.clusters.push_back(std::move(c));
      }
    }
    std::set<std::string> versions;
    for (const consul::Instance& i : svc.instances)
      if (auto v = i.labels.find("version"); v != i.labels.end() && !v->second.empty())
        versions.insert(v->second);
    for (const std::string& v : versions) {
      if (subsets.count(v)) continue;
      route::ClusterConfig c =
          make_cluster(cluster_name(service, svc.port, v), svc.instances, {{"version", v}}, false);
      apply_policy(top, c);
      subsets.insert(v);
      config_.clusters.push_back(std::move(c));
    }
  }

  // The cluster a destination names; an unknown service or subset gets an empty cluster of
  // that name (requests to it answer 503, as Envoy's for a cluster with no hosts) and a note.
  std::string resolve(const Destination& d, const VirtualService& vs) {
    const std::string service = service_of_host(d.host);
    auto it = catalog_.find(service);
    if (service.empty() || it == catalog_.end() || it->second.port == 0) {
      note(vs.source + " VirtualService " + vs.name + ": destination " + d.host +
           ": no such service in Consul (yet); requests get 503");
      return ensure_empty_cluster(cluster_name(service.empty() ? d.host : service,
                                               static_cast<uint16_t>(d.port.value_or(80)),
                                               d.subset));
    }
    const uint16_t port = it->second.port;
    if (d.port && *d.port != port)
      note(vs.source + " VirtualService " + vs.name + ": destination " + d.host + " port " +
           std::to_string(*d.port) + ": the service's port is " + std::to_string(port) +
           "; using it");
    if (!d.subset.empty() && !subsets_[service].count(d.subset)) {
      note(vs.source + " VirtualService " + vs.name + ": destination " + d.host + " subset " +
           d.subset +
           ": not defined (no DestinationRule subset, no instance version); requests get 503");
      return ensure_empty_cluster(cluster_name(service, port, d.subset));
    }
    return cluster_name(service, port, d.subset);
  }

  std::string ensure_empty_cluster(const std::string& name) {
    bool known = std::any_of(config_.clusters.begin(), config_.clusters.end(),
                             [&](const auto& c) { return c.name == name; });
    if (!known) {
      route::ClusterConfig c;
      c.name = name;
      config_.clusters.push_back(std::move(c));
    }
    return name;
  }

  static route::HeaderMatcherConfig header_matcher(const std::string& name,
                                                   const std::optional<StringMatch>& m,
                                                   bool without) {
    route::HeaderMatcherConfig h;
    h.name = name;
    if (!m) {
      h.kind = route::HeaderMatcherConfig::Kind::present;
      h.present = !without;
      return h;
    }
    switch (m->kind) {
      case StringMatch::Kind::exact:
        h.kind = route::HeaderMatcherConfig::Kind::exact;
        break;
      case StringMatch::Kind::prefix:
        h.kind = route::HeaderMatcherConfig::Kind::prefix;
        break;
      case StringMatch::Kind::regex:
        h.kind = route::HeaderMatcherConfig::Kind::regex;
        break;
    }
    h.value = m->value;
    h.invert = without;
    return h;
  }

  // One Istio match -> an Envoy route match; false when it can never match this sidecar.
  bool translate_match(const HttpMatchRequest& m, const VirtualService& vs,
                       route::RouteMatchConfig& out) {
    if (!m.source_labels.empty()) {
      if (!options_.own_labels_known) {
        note(vs.source + " VirtualService " + vs.name +
             ": sourceLabels: this sidecar's labels are unknown (set --service-cluster); the "
             "match is left out");
        return false;
      }
      for (const auto& [k, v] : m.source_labels) {
        auto it = options_.own_labels.find(k);
        if (it == options_.own_labels.end() || it->second != v) return false;
      }
    }
    out.kind = route::RouteMatchConfig::PathKind::prefix;
    out.value = "/";
    if (m.uri) {
      switch (m.uri->kind) {
        case StringMatch::Kind::exact:
          out.kind = route::RouteMatchConfig::PathKind::path;
          break;
        case StringMatch::Kind::prefix:
          out.kind = route::RouteMatchConfig::PathKind::prefix;
          break;
        case StringMatch::Kind::regex:
          out.kind = route::RouteMatchConfig::PathKind::regex;
          break;
      }
      out.value = m.uri->value;
    }
    out.case_sensitive = !m.ignore_uri_case;
    if (m.method) out.headers.push_back(header_matcher(":method", m.method, false));
    if (m.authority) out.headers.push_back(header_matcher(":authority", m.authority, false));
    for (const auto& [name, sm] : m.headers) out.headers.push_back(header_matcher(name, sm, false));
    for (const auto& [name, sm] : m.without_headers)
      out.headers.push_back(header_matcher(name, sm, true));
    return true;
  }

  // Istio's default for a route without `retries`: 2 attempts on connect failures, refused
  // streams and 503 (the gRPC conditions have no meaning for HTTP/1.1).
  static route::RetryPolicy default_retry_policy() {
    route::RetryPolicy p;
    p.num_retries = 2;
    p.retry_on = route::retry_on::kConnectFailure | route::retry_on::kRefusedStream |
                 route::retry_on::kRetriableStatusCodes;
    p.retriable_status_codes = {503};
    return p;
  }

  std::optional<route::RetryPolicy> retry_policy(const HttpRoute& r, const VirtualService& vs) {
    if (!r.retries) return default_retry_policy();
    if (r.retries->attempts == 0) return std::nullopt;
    route::RetryPolicy p;
    p.num_retries = r.retries->attempts;
    if (r.retries->per_try_timeout) p.per_try_timeout = *r.retries->per_try_timeout;
    if (!r.retries->retry_on) {
      route::RetryPolicy d = default_retry_policy();
      p.retry_on = d.retry_on;
      p.retriable_status_codes = d.retriable_status_codes;
      return p;
    }
    std::string_view list = *r.retries->retry_on;
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item.empty()) continue;
      if (std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        p.retriable_status_codes.push_back(static_cast<uint16_t>(std::stoi(std::string(item))));
        p.retry_on |= route::retry_on::kRetriableStatusCodes;
        continue;
      }
      if (auto bits = route::parse_retry_on(item, "retryOn")) {
        p.retry_on |= *bits;
        continue;
      }
      note(vs.source + " VirtualService " + vs.name + ": retries.retryOn '" + std::string(item) +
           "': not supported (HTTP/1.1 only); ignored");
    }
    return p;
  }

  void add_virtual_host(const std::string& service, const MeshService& svc) {
    const std::string fqdn = service + kDomain;
    const std::string port = ":" + std::to_string(svc.port);
    route::VirtualHostConfig vh;
    vh.name = fqdn + port;
    vh.domains = {fqdn,           fqdn + port,          service,
                  service + port, service + ".service", service + ".service" + port};
    const VirtualService* vs = vs_for(service);
    if (vs) {
      for (const HttpRoute& r : vs->http) add_routes(r, *vs, vh);
      if (vh.routes.empty())
        note(vs->source + " VirtualService " + vs->name + ": no route applies to " + service +
             " on this sidecar; requests get 404");
    } else {
      route::RouteEntryConfig r;
      r.name = "default";
      r.match.value = "/";
      r.action.cluster = cluster_name(service, svc.port, "");
      r.action.timeout = route::Duration(0);  // Istio: no route timeout unless a rule sets one
      r.action.retry_policy = default_retry_policy();
      vh.routes.push_back(std::move(r));
    }
    config_.virtual_hosts.push_back(std::move(vh));
  }

  void add_routes(const HttpRoute& r, const VirtualService& vs, route::VirtualHostConfig& vh) {
    route::RouteActionConfig action;
    if (r.route.size() == 1) {
      action.cluster = resolve(r.route[0].destination, vs);
    } else {
      for (const RouteDestination& d : r.route)
        action.weighted_clusters.push_back({resolve(d.destination, vs), d.weight.value_or(0)});
    }
    action.timeout = r.timeout.value_or(route::Duration(0));
    action.retry_policy = retry_policy(r, vs);
    if (r.rewrite) {
      action.prefix_rewrite = r.rewrite->uri;
      action.host_rewrite = r.rewrite->authority;
    }
    if (r.fault && (r.fault->delay || r.fault->abort)) {
      route::FaultConfig f;
      if (r.fault->delay)
        f.delay = route::FaultConfig::Delay{r.fault->delay->fixed_delay, r.fault->delay->percent};
      if (r.fault->abort)
        f.abort = route::FaultConfig::Abort{static_cast<uint16_t>(r.fault->abort->http_status),
                                            r.fault->abort->percent};
      action.fault = f;
    }
    const std::vector<HttpMatchRequest> all =
        r.match.empty() ? std::vector<HttpMatchRequest>{{}} : r.match;
    for (const HttpMatchRequest& m : all) {
      route::RouteEntryConfig e;
      e.name = !r.name.empty() ? r.name : m.name;
      if (!translate_match(m, vs, e.match)) continue;
      e.action = action;
      vh.routes.push_back(std::move(e));
    }
  }

  const MeshCatalog& catalog_;
  const RuleSet& rules_;
  const TranslateOptions& options_;
  route::RouteConfig config_;
  std::vector<std::string> notes_;
  std::map<std::string, const VirtualService*> vs_by_service_;
  std::map<std::string, const DestinationRule*> dr_by_service_;
  const VirtualService* wildcard_vs_ = nullptr;
  const DestinationRule* wildcard_dr_ = nullptr;
  std::map<std::string, std::set<std::string>> subsets_;  // service -> subset names
};

}  // namespace

uint16_t service_port(const consul::Instances& instances) {
  std::map<uint16_t, size_t> count;
  for (const consul::Instance& i : instances) ++count[i.port];
  uint16_t best = 0;
  size_t best_n = 0;
  for (const auto& [port, n] : count)
    if (n > best_n) best = port, best_n = n;  // ascending: ties keep the lowest
  return best;
}

std::map<std::string, std::string> labels_from_service_cluster(const std::string& name) {
  size_t dash = name.rfind('-');
  if (dash != std::string::npos && dash + 2 <= name.size() && name[dash + 1] == 'v' &&
      dash + 2 < name.size() + 1) {
    const std::string v = name.substr(dash + 1);
    bool version = v.size() > 1 && std::all_of(v.begin() + 1, v.end(), [](char c) {
                     return (c >= '0' && c <= '9') || c == '.';
                   });
    if (version) return {{"app", name.substr(0, dash)}, {"version", v}};
  }
  return {{"app", name}};
}

std::string cluster_name(const std::string& service, uint16_t port, const std::string& subset) {
  return "outbound|" + std::to_string(port) + "|" + subset + "|" + service + kDomain;
}

Translation translate(const MeshCatalog& catalog, const RuleSet& rules,
                      const TranslateOptions& options) {
  return Translator(catalog, rules, options).run();
}

}  // namespace sm::istio
