// /config_dump in Envoy's shape (envoy.admin.v3.ConfigDump, proto field names as Envoy's admin
// prints them), so istioctl-style tools can read it: ListenersConfigDump (the two listeners),
// ClustersConfigDump and RoutesConfigDump (the route table), with Envoy's ?resource=, ?mask=
// and ?name_regex=. The native table (what --config reads) stays route/config_json.h's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "route/route_config.h"

namespace sm::proxy {

struct ListenerDescription {
  std::string name;     // "outbound", "inbound" (as in /stats)
  std::string address;  // "::" (dual stack) or "0.0.0.0"
  uint16_t port = 0;
  bool ipv4_compat = false;  // an IPv6 socket that also takes IPv4
  bool outbound = true;      // Envoy's traffic_direction
};

struct ConfigDumpSource {
  const route::RouteConfig* routes = nullptr;  // null: no table yet
  std::string version_info;                    // the table's publish generation
  std::vector<ListenerDescription> listeners;
};

struct ConfigDumpAnswer {
  int status = 200;  // 400 for a bad mask or regex, 404 for an unknown resource
  std::string body;  // JSON, or the error in plain text
};

// The name the outbound listener's HTTP connection manager gives the route table.
inline constexpr const char* kRouteConfigName = "sockmesh";

// `query` holds the request's parameters: resource, mask (comma separated FieldMask paths)
// and name_regex, as Envoy documents them for /config_dump.
ConfigDumpAnswer envoy_config_dump(const ConfigDumpSource& source,
                                   const std::map<std::string, std::string>& query);

}  // namespace sm::proxy
