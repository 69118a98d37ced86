// RAII ownership of the sockmesh BPF skeleton, and loading it in its two shapes: the
// cgroup/sk_msg programs of an install, or one netns's sk_lookup instance. Maps are
// pinned by name under <pin-dir>/maps, so every load shares (and reuses) them.
#pragma once

#include <memory>
#include <string>

#include "sockmesh.skel.h"
#include "sockmesh/result.h"

namespace sm::bpf {

struct SkelDeleter {
  void operator()(sockmesh_bpf* s) const { sockmesh_bpf__destroy(s); }
};
using Skeleton = std::unique_ptr<sockmesh_bpf, SkelDeleter>;

// What one load of the object is for: the install's programs (cgroup hooks, sockops,
// sk_msg), one netns's sk_lookup instance (bound to its cookie), or install's probe of
// the kernel (sm_probe_msg only). Each load autoloads only its own programs.
struct LoadFor {
  enum Kind { install, inbound, probe } kind = install;
  uint64_t netns_cookie = 0;  // inbound
};
Result<Skeleton> load_skeleton(const std::string& maps_dir, LoadFor what);

// Routes libbpf's messages (verifier logs included) to our logger, once per process.
void route_libbpf_logs();

}  // namespace sm::bpf
