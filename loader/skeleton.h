// RAII ownership of the sockmesh BPF skeleton, and loading it in its two shapes: the
// cgroup/sk_msg programs of an install, or one netns's sk_lookup instance. Maps are
// pinned by name under <pin-dir>/maps, so every load shares (and reuses) them.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sockmesh.skel.h"
#include "sockmesh/result.h"

namespace sm::bpf {

struct SkelDeleter {
  void operator()(sockmesh_bpf* s) const { sockmesh_bpf__destroy(s); }
};
using Skeleton = std::unique_ptr<sockmesh_bpf, SkelDeleter>;

// inbound_netns_cookie unset: load the install's programs (everything but sm_inbound);
// set: load only sm_inbound, bound to that netns.
Result<Skeleton> load_skeleton(const std::string& maps_dir,
                               std::optional<uint64_t> inbound_netns_cookie);

// Routes libbpf's messages (verifier logs included) to our logger, once per process.
void route_libbpf_logs();

}  // namespace sm::bpf
