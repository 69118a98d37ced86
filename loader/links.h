// bpf_link plumbing: create-or-upgrade a pinned link (a rerun never attaches twice), and
// read what a pinned link points at (for status and for checking the target).
#pragma once

#include <bpf/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::bpf {

enum class LinkChange { created, upgraded, unchanged };
const char* to_string(LinkChange c);

// BPF_LINK_TYPE_SOCKMAP (kernel 6.10): newer than libbpf 1.1's headers.
inline constexpr uint32_t kSockmapLinkType = 14;

struct LinkInfo {
  uint32_t id = 0;
  uint32_t prog_id = 0;
  uint32_t type = 0;         // BPF_LINK_TYPE_*
  uint32_t attach_type = 0;  // BPF_CGROUP_INET4_CONNECT, ...
  uint64_t cgroup_id = 0;    // cgroup links
  uint32_t netns_ino = 0;    // netns links; 0 once the netns is gone
  uint32_t map_id = 0;       // sockmap links
};
Result<LinkInfo> link_info(int link_fd);

struct ProgInfo {
  uint32_t id = 0;
  std::string name;
  std::string tag;  // hex, as bpftool prints it
  uint32_t type = 0;
  uint32_t xlated_insns = 0;    // instructions after verification
  uint32_t verified_insns = 0;  // instructions the verifier processed (all paths)
  uint32_t jited_bytes = 0;
  std::vector<uint32_t> map_ids;
};
Result<ProgInfo> prog_info(int prog_fd);
Result<ProgInfo> prog_info_by_id(uint32_t id);

// A link to create at `pin_path` (target_fd: cgroup, netns or map fd). When the pin
// already exists, the link is kept and its program replaced atomically if it differs
// (code or maps); `expect` checks that the existing link has the same target.
struct LinkRequest {
  std::string pin_path;
  int prog_fd = -1;
  int target_fd = -1;
  bpf_attach_type attach_type{};
  // For an existing link: returns an error message if it points elsewhere, "" if fine.
  std::string (*check_target)(const LinkInfo&, const void* ctx) = nullptr;
  const void* check_ctx = nullptr;
};
Result<LinkChange> ensure_link(const LinkRequest& r);

// The link changes of one install run, undone unless commit() is called: links it created
// are unpinned (which detaches them), links it upgraded get their previous program back.
// So a failure halfway through an upgrade never leaves some links on the new programs and
// others on the old ones.
class LinkTransaction {
 public:
  LinkTransaction() = default;
  LinkTransaction(const LinkTransaction&) = delete;
  LinkTransaction& operator=(const LinkTransaction&) = delete;
  ~LinkTransaction();
  Result<LinkChange> ensure(const LinkRequest& r);
  void commit() { undo_.clear(); }

 private:
  struct Undo {
    std::string pin;
    UniqueFd link;
    UniqueFd old_prog;  // invalid for a created link
  };
  std::vector<Undo> undo_;
};

}  // namespace sm::bpf
