// bpf_link creation, upgrade and inspection; see links.h.
#include "links.h"

#include <unistd.h>

#include <cstdio>

namespace sm::bpf {

const char* to_string(LinkChange c) {
  switch (c) {
    case LinkChange::created:
      return "attached";
    case LinkChange::upgraded:
      return "upgraded";
    case LinkChange::unchanged:
      return "unchanged";
  }
  return "?";
}

Result<LinkInfo> link_info(int link_fd) {
  bpf_link_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) return errno_error("link info");
  LinkInfo li;
  li.id = info.id;
  li.prog_id = info.prog_id;
  li.type = info.type;
  if (info.type == BPF_LINK_TYPE_CGROUP) {
    li.cgroup_id = info.cgroup.cgroup_id;
    li.attach_type = info.cgroup.attach_type;
  } else if (info.type == BPF_LINK_TYPE_NETNS) {
    li.netns_ino = info.netns.netns_ino;
    li.attach_type = info.netns.attach_type;
  } else if (info.type == kSockmapLinkType) {
    // Our UAPI headers predate sockmap links: their info is {__u32 map_id; __u32
    // attach_type;} at the start of the same union as cgroup's {__u64 cgroup_id; ...}.
    __u64 raw = info.cgroup.cgroup_id;
    li.map_id = static_cast<uint32_t>(raw & 0xffffffffu);
    li.attach_type = static_cast<uint32_t>(raw >> 32);
  }
  return li;
}

Result<ProgInfo> prog_info(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return errno_error("prog info");
  ProgInfo pi;
  pi.id = info.id;
  pi.name = info.name;
  pi.type = info.type;
  pi.xlated_insns = info.xlated_prog_len / 8;
  pi.verified_insns = info.verified_insns;
  pi.jited_bytes = info.jited_prog_len;
  char hex[2 * BPF_TAG_SIZE + 1] = {};
  for (int i = 0; i < BPF_TAG_SIZE; ++i) std::snprintf(hex + 2 * i, 3, "%02x", info.tag[i]);
  pi.tag = hex;
  if (info.nr_map_ids > 0) {
    pi.map_ids.resize(info.nr_map_ids);
    bpf_prog_info again{};
    again.nr_map_ids = info.nr_map_ids;
    again.map_ids = reinterpret_cast<__u64>(pi.map_ids.data());
    len = sizeof again;
    if (bpf_obj_get_info_by_fd(prog_fd, &again, &len) != 0) return errno_error("prog map ids");
    pi.map_ids.resize(again.nr_map_ids);
  }
  return pi;
}

Result<ProgInfo> prog_info_by_id(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return errno_error("prog id " + std::to_string(id));
  UniqueFd f(fd);
  return prog_info(fd);
}

// What makes two loads of a program behave the same: its instructions (the tag leaves
// out map references), the shared maps it uses (by id) and the contents of its private
// .rodata/.bss maps (a fresh copy per load, so compared by value).
static std::string fingerprint(const ProgInfo& p) {
  std::string f = p.tag;
  for (uint32_t id : p.map_ids) {
    int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) return f + "|?";
    UniqueFd map(fd);
    bpf_map_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return f + "|?";
    std::string name = info.name;
    if (name.find('.') == std::string::npos) {
      f += "|" + std::to_string(id);
      continue;
    }
    std::string value(info.value_size, '\0');
    uint32_t zero = 0;
    if (info.max_entries != 1 || bpf_map_lookup_elem(fd, &zero, value.data()) != 0) return f + "|?";
    f += "|" + name + "=" + value;
  }
  return f;
}

namespace {

struct Applied {
  LinkChange change;
  UniqueFd link;
  UniqueFd old_prog;
};

Result<Applied> apply_link(const LinkRequest& r) {
  int existing = bpf_obj_get(r.pin_path.c_str());
  if (existing >= 0) {
    UniqueFd link(existing);
    auto li = link_info(existing);
    if (!li) return li.error();
    if (r.check_target) {
      std::string why = r.check_target(*li, r.check_ctx);
      if (!why.empty()) return plain_error(r.pin_path + ": " + why);
    }
    auto cur = prog_info_by_id(li->prog_id);
    auto next = prog_info(r.prog_fd);
    if (!next) return next.error();
    if (cur && fingerprint(*cur) == fingerprint(*next))
      return Applied{LinkChange::unchanged, UniqueFd(), UniqueFd()};
    // Hold the old program so the change can be undone.
    UniqueFd old_prog(bpf_prog_get_fd_by_id(li->prog_id));
    if (bpf_link_update(existing, r.prog_fd, nullptr) != 0)
      return errno_error("bpf_link_update " + r.pin_path);
    return Applied{LinkChange::upgraded, std::move(link), std::move(old_prog)};
  }
  if (errno != ENOENT) return errno_error("open pinned link " + r.pin_path);
  int fd = bpf_link_create(r.prog_fd, r.target_fd, r.attach_type, nullptr);
  if (fd < 0) return errno_error("bpf_link_create " + r.pin_path);
  UniqueFd link(fd);
  if (bpf_obj_pin(fd, r.pin_path.c_str()) != 0) return errno_error("pin " + r.pin_path);
  return Applied{LinkChange::created, std::move(link), UniqueFd()};
}

}  // namespace

Result<LinkChange> ensure_link(const LinkRequest& r) {
  auto a = apply_link(r);
  if (!a) return a.error();
  return a->change;
}

Result<LinkChange> LinkTransaction::ensure(const LinkRequest& r) {
  auto a = apply_link(r);
  if (!a) return a.error();
  if (a->change != LinkChange::unchanged)
    undo_.push_back(Undo{r.pin_path, std::move(a->link), std::move(a->old_prog)});
  return a->change;
}

LinkTransaction::~LinkTransaction() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    if (it->old_prog.get() >= 0)
      bpf_link_update(it->link.get(), it->old_prog.get(), nullptr);
    else
      ::unlink(it->pin.c_str());
  }
}

}  // namespace sm::bpf
