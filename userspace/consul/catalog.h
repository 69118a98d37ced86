// What sockmesh reads from Consul, parsed from the documented JSON of
// /v1/catalog/services, /v1/health/service/<name> and /v1/kv/<prefix>?recurse into plain
// values. Pure: no I/O, unit-tested against fixtures written from Consul's API samples.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sockmesh/net.h"
#include "sockmesh/result.h"

namespace sm::consul {

// One passing instance of a service.
struct Instance {
  std::string id;    // Service.ID
  std::string node;  // Node.Node
  IpAddr address;    // Service.Address, else Node.Address
  uint16_t port = 0;
  uint32_t weight = 1;  // Service.Weights.Passing (Consul's default 1)
  // Service.Meta, plus tags of the form "key|value" (how Istio's Consul adapter read labels);
  // Meta wins when both name a key. "version" selects subsets.
  std::map<std::string, std::string> labels;
  friend bool operator==(const Instance&, const Instance&) = default;
};

// Instances in a stable order (by address, port, id), so equal catalogs compare equal.
using Instances = std::vector<Instance>;

// /v1/catalog/services: service name -> tags.
Result<std::map<std::string, std::vector<std::string>>> parse_catalog_services(
    std::string_view json);

// /v1/health/service/<name>: the instances, sorted. An entry whose address is not an IP
// address (Consul allows host names) is left out and described in *skipped.
Result<Instances> parse_health_service(std::string_view json, std::vector<std::string>* skipped);

struct KvEntry {
  std::string key;
  std::string value;  // decoded from base64
  uint64_t modify_index = 0;
  friend bool operator==(const KvEntry&, const KvEntry&) = default;
};

// /v1/kv/<prefix>?recurse: entries by key. (A 404 means "no keys": the caller passes "[]".)
Result<std::vector<KvEntry>> parse_kv_entries(std::string_view json);

Result<std::string> decode_base64(std::string_view text);

}  // namespace sm::consul
