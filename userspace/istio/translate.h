// Consul's catalog + Istio's rules -> route::RouteConfig, the way pilot did it for Envoy on
// Consul: per service "reviews" on port 9080 a cluster outbound|9080||reviews.service.consul
// with every passing instance, subset clusters outbound|9080|<subset>|reviews.service.consul
// (by `version` label, and by DestinationRule subsets), and a virtual host with the six names
// a client may use. VirtualServices shape the virtual host's routes, DestinationRules the
// clusters' policies. Pure: the same inputs give the same table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "consul/catalog.h"
#include "istio/rules.h"
#include "route/route_config.h"

namespace sm::istio {

struct MeshService {
  uint16_t port = 0;  // the service port: the most common instance port (see service_port)
  consul::Instances instances;
  friend bool operator==(const MeshService&, const MeshService&) = default;
};
using MeshCatalog = std::map<std::string, MeshService>;

// The port most instances register (ties: the lowest); 0 when there are none.
uint16_t service_port(const consul::Instances& instances);

struct TranslateOptions {
  // This sidecar's own workload labels, for sourceLabels matches; unknown when
  // `own_labels_known` is false (then such matches are left out, and said so).
  std::map<std::string, std::string> own_labels;
  bool own_labels_known = false;
};

// --service-cluster "productpage-v1" -> {app: productpage, version: v1}, the convention of
// the seed's pilot-agent (serviceCluster = <service>-<version>); a name without a version
// suffix gives {app: name}.
std::map<std::string, std::string> labels_from_service_cluster(const std::string& name);

struct Translation {
  route::RouteConfig config;
  // What the rules ask for that this table cannot give (a host no service has, a subset no
  // instance carries, a match on unknown source labels...), one line each, deduplicated.
  std::vector<std::string> notes;
};

Translation translate(const MeshCatalog& catalog, const RuleSet& rules,
                      const TranslateOptions& options);

// "outbound|9080|v1|reviews.service.consul" (subset "" for the service's own cluster).
std::string cluster_name(const std::string& service, uint16_t port, const std::string& subset);

}  // namespace sm::istio
