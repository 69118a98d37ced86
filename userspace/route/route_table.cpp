// Snapshot compilation and request routing; see route_table.h.
#include "route/route_table.h"

#include <algorithm>
#include <atomic>

namespace sm::route {
namespace {

std::atomic<uint64_t> g_next_table_id{1};

}  // namespace

namespace {

// The name a route's counters go by: its own name, else its index in the virtual host.
std::string route_stat_key(const VirtualHostConfig& vh, size_t index) {
  const std::string& name = vh.routes[index].name;
  return vh.name + ".route." + (name.empty() ? std::to_string(index) : name);
}

}  // namespace

Route::Route(const RouteEntryConfig& config, const std::vector<const Cluster*>& clusters,
             std::shared_ptr<const RouteFaultStats> fault_stats)
    : config_(&config), matcher_(config.match), fault_stats_(std::move(fault_stats)) {
  // `clusters` is parallel to the action: one entry for `cluster`, or one per weighted cluster.
  const auto& weighted = config.action.weighted_clusters;
  for (size_t i = 0; i < clusters.size(); ++i) {
    total_weight_ += weighted.empty() ? 1 : weighted[i].weight;
    if (!weighted.empty() && weighted[i].weight == 0) continue;  // never picked
    targets_.push_back({total_weight_, clusters[i]});
  }
}

const Cluster& Route::pick_cluster(uint64_t random) const {
  if (targets_.size() == 1) return *targets_[0].cluster;
  const uint64_t point = random % total_weight_;
  auto it = std::upper_bound(targets_.begin(), targets_.end(), point,
                             [](uint64_t p, const Target& t) { return p < t.end; });
  return *it->cluster;
}

std::string Route::rewrite_path(std::string_view path) const {
  if (!config_->action.prefix_rewrite) return std::string(path);
  // A prefix or path match compared exactly config.match.value's length of the path (the
  // query is never part of a match), so that many characters are the matched part; a regex
  // matched the whole path, as Istio's rewrite.uri replaces it for a regex match.
  const size_t matched = config_->match.kind == RouteMatchConfig::PathKind::regex
                             ? std::min(path.find_first_of("?#"), path.size())
                             : std::min(config_->match.value.size(), path.size());
  std::string out = *config_->action.prefix_rewrite;
  out.append(path.substr(matched));
  return out;
}

const Route* VirtualHost::match(const RequestView& req) const {
  for (const Route& r : routes_)
    if (r.matches(req)) return &r;
  return nullptr;
}

Result<std::shared_ptr<const RouteTable>> RouteTable::build(RouteConfig config,
                                                            ClusterStateRegistry& states) {
  if (Status s = validate_route_config(config); !s) return s.error();
  states.prune();
  const uint64_t id = g_next_table_id.fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<const RouteTable>(new RouteTable(std::move(config), states, id));
}

RouteTable::RouteTable(RouteConfig config, ClusterStateRegistry& states, uint64_t id)
    : config_(std::move(config)), id_(id), vhost_matcher_(config_.virtual_hosts) {
  clusters_.reserve(config_.clusters.size());  // Routes point at these: no reallocation
  for (uint32_t i = 0; i < config_.clusters.size(); ++i) {
    const ClusterConfig& c = config_.clusters[i];
    clusters_.emplace_back(c, states.get(c.name), i, id_);
    cluster_index_.emplace(c.name, i);
  }
  vhosts_.reserve(config_.virtual_hosts.size());
  for (const VirtualHostConfig& vh : config_.virtual_hosts) {
    std::vector<Route> routes;
    routes.reserve(vh.routes.size());
    for (size_t i = 0; i < vh.routes.size(); ++i) {
      const RouteEntryConfig& r = vh.routes[i];
      std::vector<const Cluster*> targets;
      if (!r.action.cluster.empty()) targets.push_back(find_cluster(r.action.cluster));
      for (const WeightedClusterConfig& wc : r.action.weighted_clusters)
        targets.push_back(find_cluster(wc.name));
      routes.emplace_back(
          r, targets, r.action.fault ? states.route_fault_stats(route_stat_key(vh, i)) : nullptr);
    }
    vhosts_.emplace_back(vh, std::move(routes));
  }
}

const Cluster* RouteTable::find_cluster(std::string_view name) const {
  auto it = cluster_index_.find(name);
  return it == cluster_index_.end() ? nullptr : &clusters_[it->second];
}

const VirtualHost* RouteTable::find_virtual_host(std::string_view authority) const {
  auto v = vhost_matcher_.find(authority);
  return v ? &vhosts_[*v] : nullptr;
}

RouteResult RouteTable::route(const RequestView& req, uint64_t random) const {
  RouteResult result;
  result.virtual_host = find_virtual_host(req.authority);
  if (!result.virtual_host) return result;  // passthrough
  result.route = result.virtual_host->match(req);
  if (!result.route) {
    result.outcome = RouteOutcome::no_route;
    return result;
  }
  result.outcome = RouteOutcome::cluster;
  result.cluster = &result.route->pick_cluster(random);
  return result;
}

std::vector<std::pair<std::string, uint64_t>> render_stats(const RouteTable& table, TimePoint now) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const Cluster& c : table.clusters()) {
    const std::string prefix = "cluster." + c.name() + ".";
    for (const Stat& s : c.stats_snapshot(now))
      out.emplace_back(prefix + std::string(s.name), s.value);
  }
  for (const VirtualHost& vh : table.virtual_hosts()) {
    const auto routes = vh.routes();
    for (size_t i = 0; i < routes.size(); ++i) {
      const RouteFaultStats* f = routes[i].fault_stats();
      if (!f) continue;
      const std::string prefix = "vhost." + route_stat_key(vh.config(), i) + ".fault.";
      out.emplace_back(prefix + "delays_injected", f->delays_injected.load());
      out.emplace_back(prefix + "aborts_injected", f->aborts_injected.load());
    }
  }
  return out;
}

}  // namespace sm::route
