// install/uninstall and the Mesh handle; see mesh.h.
#include "mesh.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "skeleton.h"
#include "sockmesh/log.h"

namespace sm {
namespace {

// Undo log of one install run: pins and directories it created, removed on failure.
class Rollback {
 public:
  void created_pin(std::string p) { pins_.push_back(std::move(p)); }
  void created_dir(std::string d) { dirs_.push_back(std::move(d)); }
  void commit() {
    pins_.clear();
    dirs_.clear();
  }
  ~Rollback() {
    for (auto it = pins_.rbegin(); it != pins_.rend(); ++it) ::unlink(it->c_str());
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
  }

 private:
  std::vector<std::string> pins_, dirs_;
};

Status make_dir(const std::string& d, Rollback& rb) {
  if (host::path_exists(d)) return {};
  if (Status s = host::mkdir_p(d); !s) return s;
  rb.created_dir(d);
  return {};
}

std::string check_cgroup(const bpf::LinkInfo& li, const void* ctx) {
  const auto* cg = static_cast<const host::Cgroup*>(ctx);
  if (li.cgroup_id == cg->id) return "";
  return "already attached to another cgroup (id " + std::to_string(li.cgroup_id) +
         "); run uninstall first to move the install to " + cg->path;
}

std::string check_sockmap(const bpf::LinkInfo& li, const void* ctx) {
  uint32_t want = *static_cast<const uint32_t*>(ctx);
  if (li.map_id == want) return "";
  return "attached to map id " + std::to_string(li.map_id) + ", expected " + std::to_string(want);
}

std::string check_netns(const bpf::LinkInfo& li, const void* ctx) {
  const auto* ns = static_cast<const host::Netns*>(ctx);
  if (ns == nullptr || li.netns_ino == ns->inode) return "";
  return "attached to another network namespace (inode " + std::to_string(li.netns_ino) + ")";
}

Result<bpf::MapHandle> open_map(const PinLayout& pins, const char* name) {
  return bpf::MapHandle::open_pinned(pins.map(name), name);
}

}  // namespace

Result<std::vector<std::pair<uint64_t, sm_workload>>> BpfWorkloadStore::workloads() const {
  auto keys = netns_.keys();
  if (!keys) return keys.error();
  std::vector<std::pair<uint64_t, sm_workload>> out;
  for (uint64_t k : *keys) {
    auto v = netns_.get(k);
    if (!v) return v.error();
    if (*v) out.emplace_back(k, **v);  // removed meanwhile: skip
  }
  return out;
}

Result<InstallReport> install(const InstallOptions& opts) {
  if (Status s = host::require_privileges("install"); !s) return s.error();
  std::string cgroup_path = opts.cgroup;
  if (cgroup_path.empty()) {
    auto root = host::cgroup2_root();
    if (!root) return root.error();
    cgroup_path = *root;
  }
  auto cg = host::open_cgroup(cgroup_path);
  if (!cg) return cg.error();
  const PinLayout& pins = opts.pins;
  if (Status s = host::ensure_bpffs(pins.dir); !s) return s.error();

  Rollback rb;
  for (const auto& d : {pins.dir, pins.maps(), pins.links()})
    if (Status s = make_dir(d, rb); !s) return s.error();
  std::vector<std::string> maps_before = list_dir(pins.maps());

  auto skel = bpf::load_skeleton(pins.maps(), std::nullopt);
  // Maps libbpf pinned for this run are ours to remove if a later step fails.
  for (const auto& m : list_dir(pins.maps()))
    if (std::find(maps_before.begin(), maps_before.end(), m) == maps_before.end())
      rb.created_pin(pins.map(m));
  if (!skel) return skel.error();

  sm_config cfg{};
  cfg.flags = opts.splice ? SM_CFG_SPLICE : 0;
  uint32_t zero = 0;
  if (bpf_map__update_elem((*skel)->maps.sm_config_v1, &zero, sizeof zero, &cfg, sizeof cfg,
                           BPF_ANY) != 0)
    return errno_error("update sm_config_v1");

  InstallReport report{cgroup_path, {}};
  auto attach = [&](const std::string& name, bpf_program* prog, int target, bpf_attach_type type,
                    auto check, const void* check_ctx) -> Status {
    bpf::LinkRequest req{pins.link(name), bpf_program__fd(prog), target, type, check, check_ctx};
    auto change = bpf::ensure_link(req);
    if (!change) return change.error();
    if (*change == bpf::LinkChange::created) rb.created_pin(req.pin_path);
    report.links.emplace_back(name, *change);
    return {};
  };
  // sk_msg first: sockets spliced by sockops must find the verdict program attached.
  int sock_map = bpf_map__fd((*skel)->maps.sm_sock_v1);
  auto sock_map_info = bpf::map_info(sock_map);
  if (!sock_map_info) return sock_map_info.error();
  if (Status s = attach(kSkMsgLink, (*skel)->progs.sm_splice, sock_map, BPF_SK_MSG_VERDICT,
                        check_sockmap, &sock_map_info->id);
      !s)
    return s.error();
  bpf_program* progs[] = {(*skel)->progs.sm_sockops, (*skel)->progs.sm_getsockopt,
                          (*skel)->progs.sm_getpeername4, (*skel)->progs.sm_connect4};
  for (size_t i = 0; i < std::size(kCgroupPrograms); ++i) {
    const auto& p = kCgroupPrograms[i];
    if (Status s = attach(p.link, progs[i], cg->fd.get(), p.attach_type, check_cgroup, &*cg); !s)
      return s.error();
  }

  // An upgrade also moves enrolled namespaces' sk_lookup links to the new program.
  auto mesh = Mesh::open(pins);
  if (!mesh) return mesh.error();
  auto inbound = mesh->refresh_inbound_links();
  if (!inbound) return inbound.error();
  for (auto& l : *inbound) report.links.push_back(std::move(l));
  rb.commit();
  return report;
}

Result<bool> uninstall(const PinLayout& pins) {
  if (Status s = host::require_privileges("uninstall"); !s) return s.error();
  if (!host::path_exists(pins.dir)) return false;
  // Links first (detaches programs), then maps, then the directories.
  for (const auto& sub : {pins.links(), pins.maps()}) {
    for (const auto& name : list_dir(sub)) {
      std::string p = sub + "/" + name;
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) return errno_error("unlink " + p);
    }
    if (::rmdir(sub.c_str()) != 0 && errno != ENOENT) return errno_error("rmdir " + sub);
  }
  if (::rmdir(pins.dir.c_str()) != 0 && errno != ENOENT)
    return errno_error("rmdir " + pins.dir + " (something else is pinned there?)");
  return true;
}

Result<Mesh> Mesh::open(const PinLayout& pins) {
  if (!host::path_exists(pins.map(SM_MAP_NETNS)))
    return plain_error("sockmesh is not installed at " + pins.dir +
                       " (run: sockmesh-loader install --pin-dir " + pins.dir + ")");
  auto netns = open_map(pins, SM_MAP_NETNS);
  if (!netns) return netns.error();
  auto port = open_map(pins, SM_MAP_PORT);
  if (!port) return port.error();
  auto cidr = open_map(pins, SM_MAP_CIDR);
  if (!cidr) return cidr.error();
  auto listen = open_map(pins, SM_MAP_LISTEN);
  if (!listen) return listen.error();
  auto stats = open_map(pins, SM_MAP_STATS);
  if (!stats) return stats.error();
  auto config = open_map(pins, SM_MAP_CONFIG);
  if (!config) return config.error();
  auto store =
      std::make_unique<BpfWorkloadStore>(std::move(*netns), std::move(*port), std::move(*cidr));
  return Mesh(pins, std::move(store), std::move(*listen), std::move(*stats), std::move(*config));
}

Result<bpf::LinkChange> Mesh::attach_inbound(uint64_t cookie, const host::Netns* ns) {
  auto skel = bpf::load_skeleton(pins_.maps(), cookie);
  if (!skel) return skel.error();
  bpf::LinkRequest req{pins_.link(PinLayout::inbound_link_name(cookie)),
                       bpf_program__fd((*skel)->progs.sm_inbound),
                       ns ? ns->fd.get() : -1,
                       BPF_SK_LOOKUP,
                       check_netns,
                       ns};
  if (!ns && !host::path_exists(req.pin_path))
    return plain_error("no sk_lookup link for netns cookie " + std::to_string(cookie));
  return bpf::ensure_link(req);
}

Status Mesh::enroll(const host::Netns& ns, const WorkloadSettings& s) {
  if (auto gone = collect_gone(); !gone) return gone.error();
  if (Status st = sm::enroll(*store_, ns.cookie, ns.inode, s); !st) return st;
  auto change = attach_inbound(ns.cookie, &ns);
  if (!change) {
    (void)sm::unenroll(*store_, ns.cookie);  // nothing half-enrolled
    return change.error();
  }
  return {};
}

Result<bool> Mesh::unenroll(uint64_t cookie) {
  auto was = sm::unenroll(*store_, cookie);
  if (!was) return was.error();
  std::string link = pins_.link(PinLayout::inbound_link_name(cookie));
  bool had_link = ::unlink(link.c_str()) == 0;
  if (!had_link && errno != ENOENT) return errno_error("unlink " + link);
  if (Status s = listen_.erase(cookie); !s) return s.error();
  return *was || had_link;
}

Result<std::vector<uint64_t>> Mesh::collect_gone() {
  std::vector<uint64_t> gone;
  const std::string prefix = "inbound_";
  for (const auto& name : list_dir(pins_.links())) {
    if (name.rfind(prefix, 0) != 0) continue;
    int fd = bpf_obj_get(pins_.link(name).c_str());
    if (fd < 0) continue;
    UniqueFd link(fd);
    auto li = bpf::link_info(fd);
    if (!li || li->netns_ino != 0) continue;
    uint64_t cookie = std::stoull(name.substr(prefix.size()));
    if (auto r = unenroll(cookie); !r) return r.error();
    SM_INFO("netns cookie %llu is gone: unenrolled", static_cast<unsigned long long>(cookie));
    gone.push_back(cookie);
  }
  return gone;
}

Result<std::vector<std::pair<std::string, bpf::LinkChange>>> Mesh::refresh_inbound_links() {
  std::vector<std::pair<std::string, bpf::LinkChange>> out;
  auto wls = store_->workloads();
  if (!wls) return wls.error();
  for (const auto& [cookie, value] : *wls) {
    if (!host::path_exists(pins_.link(PinLayout::inbound_link_name(cookie)))) continue;
    auto change = attach_inbound(cookie, nullptr);
    if (!change) return change.error();
    out.emplace_back(PinLayout::inbound_link_name(cookie), *change);
  }
  return out;
}

Status Mesh::set_splice(bool on) {
  auto cur = config_.get(0);
  if (!cur) return cur.error();
  sm_config c = cur->value_or(sm_config{});
  c.flags = on ? (c.flags | SM_CFG_SPLICE) : (c.flags & ~uint32_t{SM_CFG_SPLICE});
  return config_.put(0, c);
}

Result<bool> Mesh::splice() const {
  auto cur = config_.get(0);
  if (!cur) return cur.error();
  return cur->has_value() && ((*cur)->flags & SM_CFG_SPLICE);
}

Result<sm_stats> Mesh::stats() const {
  return bpf::sum_percpu<sm_stats>(stats_, 0);
}

}  // namespace sm
