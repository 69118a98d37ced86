// Enrollment bookkeeping over a WorkloadStore; see enrollment.h.
#include "enrollment.h"

#include <algorithm>
#include <cstring>

namespace sm {
namespace {

template <typename K>
bool same_key(const K& a, const K& b) {
  return std::memcmp(&a, &b, sizeof(K)) == 0;
}
template <typename K>
bool contains(const std::vector<K>& v, const K& k) {
  return std::any_of(v.begin(), v.end(), [&](const K& x) { return same_key(x, k); });
}

}  // namespace

Status enroll(WorkloadStore& store, uint64_t netns_cookie, uint64_t netns_inode,
              const WorkloadSettings& s) {
  if (Status v = s.validate(); !v) return v;
  EncodedWorkload e = encode_workload(netns_cookie, netns_inode, s);
  auto old_ports = store.ports();
  if (!old_ports) return old_ports.error();
  auto old_cidrs = store.cidrs();
  if (!old_cidrs) return old_cidrs.error();

  for (const auto& k : e.ports)
    if (Status st = store.put_port(k); !st) return st;
  for (const auto& k : e.cidrs)
    if (Status st = store.put_cidr(k); !st) return st;
  if (Status st = store.put_workload(netns_cookie, e.value); !st) return st;

  for (const auto& k : *old_ports)
    if (k.netns_cookie == netns_cookie && !contains(e.ports, k))
      if (Status st = store.erase_port(k); !st) return st;
  for (const auto& k : *old_cidrs)
    if (k.netns_cookie == netns_cookie && !contains(e.cidrs, k))
      if (Status st = store.erase_cidr(k); !st) return st;
  return {};
}

Result<bool> unenroll(WorkloadStore& store, uint64_t netns_cookie) {
  auto wls = store.workloads();
  if (!wls) return wls.error();
  bool was =
      std::any_of(wls->begin(), wls->end(), [&](const auto& w) { return w.first == netns_cookie; });
  if (was)
    if (Status st = store.erase_workload(netns_cookie); !st) return st.error();
  auto ports = store.ports();
  if (!ports) return ports.error();
  for (const auto& k : *ports)
    if (k.netns_cookie == netns_cookie)
      if (Status st = store.erase_port(k); !st) return st.error();
  auto cidrs = store.cidrs();
  if (!cidrs) return cidrs.error();
  for (const auto& k : *cidrs)
    if (k.netns_cookie == netns_cookie)
      if (Status st = store.erase_cidr(k); !st) return st.error();
  return was;
}

Result<std::vector<Enrolled>> list_enrolled(const WorkloadStore& store) {
  auto wls = store.workloads();
  if (!wls) return wls.error();
  auto ports = store.ports();
  if (!ports) return ports.error();
  auto cidrs = store.cidrs();
  if (!cidrs) return cidrs.error();
  std::vector<Enrolled> out;
  for (const auto& [cookie, value] : *wls)
    out.push_back({cookie, value, decode_workload(cookie, value, *ports, *cidrs)});
  std::sort(out.begin(), out.end(),
            [](const Enrolled& a, const Enrolled& b) { return a.netns_cookie < b.netns_cookie; });
  return out;
}

}  // namespace sm
