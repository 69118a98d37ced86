// Consul response parsing; see catalog.h.
#include "consul/catalog.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

namespace sm::consul {
namespace {

using json = nlohmann::json;

Result<json> parse_json(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return plain_error(std::string(what) + ": invalid JSON");
  return j;
}

// A string member, "" when absent or null.
std::string str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::map<std::string, std::vector<std::string>>> parse_catalog_services(
    std::string_view text) {
  auto j = parse_json(text, "catalog/services");
  if (!j) return j.error();
  if (!j->is_object()) return plain_error("catalog/services: expected an object");
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, tags] : j->items()) {
    std::vector<std::string>& list = out[name];
    if (tags.is_array())
      for (const json& t : tags)
        if (t.is_string()) list.push_back(t.get<std::string>());
  }
  return out;
}

Result<Instances> parse_health_service(std::string_view text, std::vector<std::string>* skipped) {
  auto j = parse_json(text, "health/service");
  if (!j) return j.error();
  if (!j->is_array()) return plain_error("health/service: expected an array");
  Instances out;
  for (size_t i = 0; i < j->size(); ++i) {
    const json& entry = (*j)[i];
    const std::string at = "health/service[" + std::to_string(i) + "]";
    if (!entry.is_object()) return plain_error(at + ": expected an object");
    auto svc_it = entry.find("Service");
    if (svc_it == entry.end() || !svc_it->is_object())
      return plain_error(at + ".Service: expected an object");
    const json& svc = *svc_it;
    static const json kEmpty = json::object();
    auto node_it = entry.find("Node");
    const json& node = node_it != entry.end() && node_it->is_object() ? *node_it : kEmpty;

    Instance inst;
    inst.id = str(svc, "ID");
    inst.node = str(node, "Node");
    auto port = svc.find("Port");
    if (port == svc.end() || !port->is_number_unsigned() || port->get<uint64_t>() > 65535)
      return plain_error(at + ".Service.Port: expected 0..65535");
    inst.port = static_cast<uint16_t>(port->get<uint64_t>());
    std::string addr = str(svc, "Address");
    if (addr.empty()) addr = str(node, "Address");
    auto ip = parse_ip(addr, "address");
    if (!ip || ip->is_unspecified() || inst.port == 0) {
      if (skipped)
        skipped->push_back("instance " + inst.id + " on node " + inst.node + ": address '" + addr +
                           "' port " + std::to_string(inst.port) +
                           (inst.port == 0 ? ": no port" : ": not an IP address"));
      continue;
    }
    inst.address = *ip;
    if (auto w = svc.find("Weights"); w != svc.end() && w->is_object()) {
      auto p = w->find("Passing");
      if (p != w->end() && p->is_number_unsigned() && p->get<uint64_t>() >= 1)
        inst.weight = static_cast<uint32_t>(std::min<uint64_t>(p->get<uint64_t>(), 1u << 20));
    }
    if (auto tags = svc.find("Tags"); tags != svc.end() && tags->is_array()) {
      for (const json& t : *tags) {
        if (!t.is_string()) continue;
        const std::string tag = t.get<std::string>();
        size_t bar = tag.find('|');
        if (bar != std::string::npos && bar > 0)
          inst.labels[tag.substr(0, bar)] = tag.substr(bar + 1);
      }
    }
    if (auto meta = svc.find("Meta"); meta != svc.end() && meta->is_object()) {
      for (const auto& [k, v] : meta->items())
        if (v.is_string()) inst.labels[k] = v.get<std::string>();
    }
    out.push_back(std::move(inst));
  }
  std::sort(out.begin(), out.end(), [](const Instance& a, const Instance& b) {
    return std::tie(a.address, a.port, a.id) < std::tie(b.address, b.port, b.id);
  });
  return out;
}

Result<std::vector<KvEntry>> parse_kv_entries(std::string_view text) {
  auto j = parse_json(text, "kv");
  if (!j) return j.error();
  if (!j->is_array()) return plain_error("kv: expected an array");
  std::vector<KvEntry> out;
  for (const json& e : *j) {
    if (!e.is_object()) return plain_error("kv: expected objects");
    KvEntry kv;
    kv.key = str(e, "Key");
    auto v = e.find("Value");
    if (v != e.end() && v->is_string()) {
      auto decoded = decode_base64(v->get<std::string>());
      if (!decoded) return plain_error("kv " + kv.key + ": " + decoded.error().message());
      kv.value = std::move(*decoded);
    }
    if (auto m = e.find("ModifyIndex"); m != e.end() && m->is_number_unsigned())
      kv.modify_index = m->get<uint64_t>();
    out.push_back(std::move(kv));
  }
  std::sort(out.begin(), out.end(),
            [](const KvEntry& a, const KvEntry& b) { return a.key < b.key; });
  return out;
}

Result<std::string> decode_base64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : text) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad) return plain_error("invalid base64: data after padding");
    int v = value(c);
    if (v < 0) return plain_error("invalid base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (pad > 2 || (text.size() % 4 != 0 && pad)) return plain_error("invalid base64 padding");
  return out;
}

}  // namespace sm::consul
