// Typed access to one pinned BPF map. Every error says which map and which operation
// failed, with errno (katran-style wrappers instead of bare bools).
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::bpf {

// The map's fd plus its name, for messages. Not typed: see Map<K, V>.
class MapHandle {
 public:
  MapHandle() = default;
  MapHandle(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  static Result<MapHandle> open_pinned(const std::string& path, const std::string& name);

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  Error op_error(const char* op, int err) const { return errno_error(op + (" " + name_), err); }

 private:
  UniqueFd fd_;
  std::string name_;
};

template <typename K, typename V>
class Map {
 public:
  Map() = default;
  explicit Map(MapHandle h) : h_(std::move(h)) {}

  const MapHandle& handle() const { return h_; }

  Result<std::optional<V>> get(const K& key) const {
    V v{};
    if (bpf_map_lookup_elem(h_.fd(), &key, &v) == 0) return std::optional<V>(v);
    if (errno == ENOENT) return std::optional<V>();
    return h_.op_error("lookup", errno);
  }
  Status put(const K& key, const V& value, uint64_t flags = BPF_ANY) {
    if (bpf_map_update_elem(h_.fd(), &key, &value, flags) == 0) return {};
    return h_.op_error("update", errno);
  }
  // Removing a missing key is not an error: the caller wanted it gone.
  Status erase(const K& key) {
    if (bpf_map_delete_elem(h_.fd(), &key) == 0 || errno == ENOENT) return {};
    return h_.op_error("delete", errno);
  }
  Result<std::vector<K>> keys() const {
    std::vector<K> out;
    K cur{}, next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(h_.fd(), prev, &next) == 0) {
      out.push_back(next);
      cur = next;
      prev = &cur;
    }
    if (errno != ENOENT) return h_.op_error("iterate", errno);
    return out;
  }

 private:
  MapHandle h_;
};

// Sum of a per-CPU array's entry over all possible CPUs, field by field (u64 fields).
template <typename V>
Result<V> sum_percpu(const MapHandle& h, uint32_t key) {
  static_assert(sizeof(V) % 8 == 0, "per-CPU values are summed as u64 fields");
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return errno_error("libbpf_num_possible_cpus", ncpu);
  std::vector<V> per(static_cast<size_t>(ncpu));
  if (bpf_map_lookup_elem(h.fd(), &key, per.data()) != 0) return h.op_error("lookup", errno);
  // memcpy, not pointer casts: sm_stats fields are __u64 (unsigned long long), and
  // writing them through a uint64_t* breaks strict aliasing at -O2.
  V total{};
  unsigned char* t = reinterpret_cast<unsigned char*>(&total);
  for (const V& v : per) {
    const unsigned char* f = reinterpret_cast<const unsigned char*>(&v);
    for (size_t off = 0; off < sizeof(V); off += 8) {
      uint64_t a, b;
      std::memcpy(&a, t + off, 8);
      std::memcpy(&b, f + off, 8);
      a += b;
      std::memcpy(t + off, &a, 8);
    }
  }
  return total;
}

// Number of entries of a map that supports iteration, or an error (e.g. socket storage).
Result<size_t> count_entries(const MapHandle& h, size_t key_size);

struct MapInfo {
  uint32_t id = 0;
  std::string name;
  uint32_t type = 0;
  uint32_t key_size = 0, value_size = 0, max_entries = 0;
};
Result<MapInfo> map_info(int fd);

}  // namespace sm::bpf
