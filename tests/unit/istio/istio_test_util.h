// Shared helpers for the Istio tests: rule files and a bookinfo catalog built in code.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "istio/parse.h"
#include "istio/translate.h"

namespace sm::istio::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string istio_file(const std::string& rel) {
  return read_file(std::string(SM_ISTIO_DIR) + "/" + rel);
}

inline RuleSet load(const std::string& rel) {
  auto r = parse_rules(istio_file(rel), rel);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : RuleSet{};
}

inline consul::Instance instance(const std::string& id, const char* addr, const std::string& v,
                                 uint16_t port = 9080) {
  consul::Instance i;
  i.id = id;
  i.address = *parse_ip(addr, "test");
  i.port = port;
  if (!v.empty()) i.labels["version"] = v;
  return i;
}

// bookinfo as registrator puts it in Consul: reviews v1/v2/v3, ratings v1, details v1,
// productpage v1, all on 9080.
inline MeshCatalog bookinfo() {
  MeshCatalog c;
  c["reviews"] = {
      9080,
      {instance("reviews-v1", "198.18.2.11", "v1"), instance("reviews-v2", "198.18.2.12", "v2"),
       instance("reviews-v3", "198.18.2.13", "v3")}};
  c["ratings"] = {9080, {instance("ratings-v1", "198.18.2.21", "v1")}};
  c["details"] = {9080, {instance("details-v1", "198.18.2.31", "v1")}};
  c["productpage"] = {9080, {instance("productpage-v1", "198.18.2.41", "v1")}};
  return c;
}

}  // namespace sm::istio::test
