// The routing snapshot: virtual hosts -> routes -> clusters, compiled from a RouteConfig for
// matching. Immutable once built and shared as shared_ptr<const RouteTable> (snapshot.h);
// the live per-cluster state it points to is in ClusterState.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "route/cluster.h"
#include "route/cluster_state.h"
#include "route/route_config.h"
#include "route/route_matcher.h"
#include "route/vhost_matcher.h"
#include "sockmesh/result.h"

namespace sm::route {

class Route {
 public:
  // `fault_stats`: the route's fault counters when it has a fault config.
  Route(const RouteEntryConfig& config, const std::vector<const Cluster*>& clusters,
        std::shared_ptr<const RouteFaultStats> fault_stats = nullptr);

  const RouteEntryConfig& config() const { return *config_; }
  bool matches(const RequestView& req) const { return matcher_.matches(req); }

  // The cluster for one request. With weighted_clusters, as Envoy: `random` modulo the total
  // weight falls in one cluster's share. Pass a hash instead of a random value for sticky
  // choices; tests pass a counter.
  const Cluster& pick_cluster(uint64_t random) const;

  Duration timeout() const { return config_->action.timeout; }  // 0: no timeout
  const RetryPolicy* retry_policy() const {
    return config_->action.retry_policy ? &*config_->action.retry_policy : nullptr;
  }
  const FaultConfig* fault() const {
    return config_->action.fault ? &*config_->action.fault : nullptr;
  }
  const RouteFaultStats* fault_stats() const { return fault_stats_.get(); }
  const std::string* host_rewrite() const {
    return config_->action.host_rewrite ? &*config_->action.host_rewrite : nullptr;
  }
  // The path to send upstream for a request this route matched: with prefix_rewrite, the
  // matched prefix (or the whole path of a path match) swapped for it, query kept, as Envoy.
  std::string rewrite_path(std::string_view path) const;

 private:
  struct Target {
    uint64_t end;  // cumulative weight: picked when random % total < end
    const Cluster* cluster;
  };
  const RouteEntryConfig* config_;
  RouteMatcher matcher_;
  std::vector<Target> targets_;
  uint64_t total_weight_ = 0;
  std::shared_ptr<const RouteFaultStats> fault_stats_;
};

class VirtualHost {
 public:
  VirtualHost(const VirtualHostConfig& config, std::vector<Route> routes)
      : config_(&config), routes_(std::move(routes)) {}

  const VirtualHostConfig& config() const { return *config_; }
  const std::string& name() const { return config_->name; }
  std::span<const Route> routes() const { return routes_; }
  // Routes in order; the first that matches wins.
  const Route* match(const RequestView& req) const;

 private:
  const VirtualHostConfig* config_;
  std::vector<Route> routes_;
};

enum class RouteOutcome : uint8_t {
  cluster,      // send to `cluster`
  no_route,     // a virtual host claimed the host but no route matched: 404 (Envoy: NR)
  passthrough,  // no virtual host: forward to the original destination (Istio's
                // PassthroughCluster), as for non-HTTP bytes
};

struct RouteResult {
  RouteOutcome outcome = RouteOutcome::passthrough;
  const VirtualHost* virtual_host = nullptr;  // set unless passthrough
  const Route* route = nullptr;               // set for outcome cluster
  const Cluster* cluster = nullptr;           // set for outcome cluster
};

class RouteTable {
 public:
  // Validates and compiles `config`, binding each cluster to its ClusterState in `states`
  // (existing state for a cluster name already known, so counters and ejections carry over).
  // Off the data path: allocates and takes the registry's lock.
  static Result<std::shared_ptr<const RouteTable>> build(RouteConfig config,
                                                         ClusterStateRegistry& states);

  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Host -> virtual host -> route -> cluster. No locks, no allocation.
  RouteResult route(const RequestView& req, uint64_t random) const;
  const VirtualHost* find_virtual_host(std::string_view authority) const;
  const Cluster* find_cluster(std::string_view name) const;

  std::span<const VirtualHost> virtual_hosts() const { return vhosts_; }
  std::span<const Cluster> clusters() const { return clusters_; }
  // What this table was built from: /config_dump prints dump_route_config(config()).
  const RouteConfig& config() const { return config_; }
  // Unique per built table (never reused), so per-worker caches can tell snapshots apart.
  uint64_t id() const { return id_; }

 private:
  RouteTable(RouteConfig config, ClusterStateRegistry& states, uint64_t id);

  // Order matters: everything below points into config_.
  const RouteConfig config_;
  const uint64_t id_;
  std::vector<Cluster> clusters_;
  std::unordered_map<std::string_view, uint32_t> cluster_index_;
  std::vector<VirtualHost> vhosts_;
  VhostMatcher vhost_matcher_;
};

// Every cluster's stats with Envoy's full names ("cluster.<name>.upstream_rq_total"), and
// each fault-injecting route's ("vhost.<vhost>.route.<name or index>.fault.delays_injected"),
// for /stats; Prometheus output takes Cluster::stats_snapshot() and labels by cluster instead.
std::vector<std::pair<std::string, uint64_t>> render_stats(const RouteTable& table, TimePoint now);

}  // namespace sm::route
