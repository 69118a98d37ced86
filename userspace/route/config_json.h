// The JSON form of the route table: `sockmesh-proxy --config FILE` reads it and the admin's
// /config_dump prints it, in the same shape, so a dump can be fed back unchanged.
#pragma once

#include <string>
#include <string_view>

#include "route/route_config.h"
#include "sockmesh/result.h"

namespace sm::route {

// Parses and validates. Every error names the field path, e.g.
// "virtual_hosts[0].routes[2].match: needs exactly one of prefix, path" or
// "clusters[1].endpoints[0].port: must be 1..65535". Unknown fields are errors (a typo must
// not silently drop a setting).
Result<RouteConfig> parse_route_config(std::string_view json_text);
// parse_route_config on a file; errors start with the file name.
Result<RouteConfig> load_route_config(const std::string& path);
// Stable, two-space indented JSON. Like protobuf JSON (and so Envoy's dump), a field left at
// its default is omitted; parse_route_config(dump_route_config(c)) == c.
std::string dump_route_config(const RouteConfig& config);

}  // namespace sm::route
