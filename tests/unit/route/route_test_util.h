// Shared helpers for the route tests: fixture files and small configs built in code.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "route/config_json.h"
#include "route/route_config.h"
#include "route/route_table.h"
#include "sockmesh/net.h"

namespace sm::route::test {

inline std::string fixture_path(const std::string& name) {
  return std::string(SM_ROUTE_FIXTURES) + "/" + name;
}

inline std::string read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  EXPECT_TRUE(in) << "missing fixture " << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline RouteConfig load_fixture(const std::string& name) {
  auto config = load_route_config(fixture_path(name));
  EXPECT_TRUE(config.ok()) << config.error().message();
  return config.ok() ? *config : RouteConfig{};
}

inline EndpointConfig endpoint(const char* address, uint16_t port = 9080, uint32_t weight = 1) {
  EndpointConfig ep;
  ep.address = *parse_ip(address, "test");
  ep.port = port;
  ep.weight = weight;
  return ep;
}

inline ClusterConfig cluster(std::string name, std::vector<EndpointConfig> endpoints,
                             LbPolicy policy = LbPolicy::round_robin) {
  ClusterConfig c;
  c.name = std::move(name);
  c.lb_policy = policy;
  c.endpoints = std::move(endpoints);
  return c;
}

// A table with just one cluster (and no virtual hosts), for load-balancing tests.
inline std::shared_ptr<const RouteTable> table_of(ClusterConfig c, ClusterStateRegistry& states) {
  RouteConfig config;
  config.clusters.push_back(std::move(c));
  auto table = RouteTable::build(std::move(config), states);
  EXPECT_TRUE(table.ok()) << table.error().message();
  return *table;
}

inline TimePoint at_seconds(int64_t s) {
  return TimePoint(std::chrono::seconds(s));
}

}  // namespace sm::route::test
