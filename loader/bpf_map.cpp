// Pinned-map helpers that need no template: opening, info, counting.
#include "bpf_map.h"

namespace sm::bpf {

Result<MapHandle> MapHandle::open_pinned(const std::string& path, const std::string& name) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return errno_error("open pinned map " + path, errno);
  return MapHandle(UniqueFd(fd), name);
}

Result<size_t> count_entries(const MapHandle& h, size_t key_size) {
  std::vector<unsigned char> cur(key_size), next(key_size);
  const void* prev = nullptr;
  size_t n = 0;
  while (bpf_map_get_next_key(h.fd(), prev, next.data()) == 0) {
    ++n;
    cur.swap(next);
    prev = cur.data();
  }
  if (errno != ENOENT) return h.op_error("iterate", errno);
  return n;
}

Result<MapInfo> map_info(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return errno_error("map info", errno);
  return MapInfo{info.id, info.name, info.type, info.key_size, info.value_size, info.max_entries};
}

}  // namespace sm::bpf
