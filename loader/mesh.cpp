// install/uninstall and the Mesh handle; see mesh.h.
#include "mesh.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "probe.h"
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

// Pins of another map layout (an older or newer sockmesh) must never be mixed with this
// one: its programs would miss every workload enrolled in the other layout's maps.
Status check_layout(const PinLayout& pins) {
  std::string others;
  for (const auto& name : list_dir(pins.maps())) {
    if (name.rfind("sm_", 0) != 0) continue;
    bool ours = std::any_of(std::begin(kMapNames), std::end(kMapNames),
                            [&](const char* n) { return name == n; });
    if (!ours) others += (others.empty() ? "" : ", ") + name;
  }
  if (others.empty()) return {};
  return plain_error("install: " + pins.maps() + " holds maps of another sockmesh layout (" +
                     others + "); nothing was changed. Run `sockmesh-loader uninstall --pin-dir " +
                     pins.dir + "` first, then install and enroll the workloads again");
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
  if (Status s = check_layout(pins); !s) return s.error();

  Rollback rb;
  for (const auto& d : {pins.dir, pins.maps(), pins.links()})
    if (Status s = make_dir(d, rb); !s) return s.error();
  std::vector<std::string> maps_before = list_dir(pins.maps());
  bool fresh = !host::path_exists(pins.map(SM_MAP_CONFIG));

  auto skel = bpf::load_skeleton(pins.maps(), bpf::LoadFor{});
  // Maps libbpf pinned for this run are ours to remove if a later step fails.
  for (const auto& m : list_dir(pins.maps()))
    if (std::find(maps_before.begin(), maps_before.end(), m) == maps_before.end())
      rb.created_pin(pins.map(m));
  if (!skel) return skel.error();
  auto mesh = Mesh::open(pins);
  if (!mesh) return mesh.error();

  // Settings of a running install survive a rerun (`splice off` stays off); a new install
  // probes the kernel once (a reboot into another kernel starts from empty bpffs).
  InstallReport report{cgroup_path, true, false, "", {}};
  auto cfg = mesh->config();
  if (!cfg) return cfg.error();
  if (fresh) {
    auto probe = probe_app_splice(pins.maps());
    if (!probe) return probe.error();
    report.probe = probe->detail;
    cfg->flags = SM_CFG_SPLICE | (probe->app_splice_safe() ? SM_CFG_APP_SPLICE_SAFE : 0);
  }
  if (opts.splice)
    cfg->flags = *opts.splice ? (cfg->flags | SM_CFG_SPLICE) : (cfg->flags & ~SM_CFG_SPLICE);
  if (Status s = mesh->set_config(*cfg); !s) return s.error();
  report.splice = cfg->flags & SM_CFG_SPLICE;
  report.app_splice_safe = cfg->flags & SM_CFG_APP_SPLICE_SAFE;

  // Workloads whose netns is gone have defunct links that cannot be upgraded.
  if (auto gone = mesh->collect_gone(); !gone) return gone.error();

  bpf::LinkTransaction tx;
  auto attach = [&](const std::string& name, bpf_program* prog, int target, bpf_attach_type type,
                    auto check, const void* check_ctx) -> Status {
    bpf::LinkRequest req{pins.link(name), bpf_program__fd(prog), target, type, check, check_ctx};
    auto change = tx.ensure(req);
    if (!change) return change.error();
    report.links.emplace_back(name, *change);
    return {};
  };
  // sk_msg first: sockets spliced by sockops must find the verdict program attached.
  int sock_map = bpf_map__fd((*skel)->maps.sm_sock_v2);
  auto sock_map_info = bpf::map_info(sock_map);
  if (!sock_map_info) return sock_map_info.error();
  if (Status s = attach(kSkMsgLink, (*skel)->progs.sm_splice, sock_map, BPF_SK_MSG_VERDICT,
                        check_sockmap, &sock_map_info->id);
      !s)
    return s.error();
  bpf_program* progs[] = {(*skel)->progs.sm_sockops,      (*skel)->progs.sm_getsockopt,
                          (*skel)->progs.sm_setsockopt,   (*skel)->progs.sm_getpeername4,
                          (*skel)->progs.sm_getpeername6, (*skel)->progs.sm_connect4,
                          (*skel)->progs.sm_connect6};
  static_assert(std::size(progs) == std::size(kCgroupPrograms));
  for (size_t i = 0; i < std::size(kCgroupPrograms); ++i) {
    const auto& p = kCgroupPrograms[i];
    if (Status s = attach(p.link, progs[i], cg->fd.get(), p.attach_type, check_cgroup, &*cg); !s)
      return s.error();
  }

  // An upgrade also moves enrolled namespaces' sk_lookup links to the new program.
  auto inbound = mesh->refresh_inbound_links(tx);
  if (!inbound) return inbound.error();
  for (auto& l : *inbound) report.links.push_back(std::move(l));
  tx.commit();
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
  auto addrs = open_map(pins, SM_MAP_ADDR);
  if (!addrs) return addrs.error();
  auto stats = open_map(pins, SM_MAP_STATS);
  if (!stats) return stats.error();
  auto config = open_map(pins, SM_MAP_CONFIG);
  if (!config) return config.error();
  auto store =
      std::make_unique<BpfWorkloadStore>(std::move(*netns), std::move(*port), std::move(*cidr));
  return Mesh(pins, std::move(store), std::move(*listen), std::move(*addrs), std::move(*stats),
              std::move(*config));
}

Result<bpf::LinkChange> Mesh::attach_inbound(uint64_t cookie, const host::Netns* ns,
                                             bpf::LinkTransaction* tx) {
  auto skel = bpf::load_skeleton(pins_.maps(), bpf::LoadFor{bpf::LoadFor::inbound, cookie});
  if (!skel) return skel.error();
  bpf::LinkRequest req{pins_.link(PinLayout::inbound_link_name(cookie)),
                       bpf_program__fd((*skel)->progs.sm_inbound),
                       ns ? ns->fd.get() : -1,
                       BPF_SK_LOOKUP,
                       check_netns,
                       ns};
  if (!ns && !host::path_exists(req.pin_path))
    return plain_error("no sk_lookup link for netns cookie " + std::to_string(cookie));
  return tx ? tx->ensure(req) : bpf::ensure_link(req);
}

Status Mesh::claim_addresses(const host::Netns& ns) {
  auto have = host::netns_addresses(ns);
  if (!have) return have.error();
  auto keys = addrs_.keys();
  if (!keys) return keys.error();
  for (const IpAddr& a : *have) {
    sm_addr k = to_sm_addr(a);
    auto owner = addrs_.get(k);
    if (!owner) return owner.error();
    if (*owner && **owner != ns.cookie) {
      // First come, first served: a netns cannot take over another pod's address.
      SM_WARN(
          "enroll %s: address %s belongs to netns cookie %llu; not claimed (its "
          "connections are not spliced)",
          ns.path.c_str(), a.str().c_str(), static_cast<unsigned long long>(**owner));
      continue;
    }
    if (Status s = addrs_.put(k, ns.cookie); !s) return s;
  }
  for (const sm_addr& k : *keys) {
    auto owner = addrs_.get(k);
    if (!owner) return owner.error();
    if (*owner && **owner == ns.cookie &&
        std::find(have->begin(), have->end(), from_sm_addr(k)) == have->end())
      if (Status s = addrs_.erase(k); !s) return s;
  }
  return {};
}

Status Mesh::release_addresses(uint64_t cookie) {
  auto keys = addrs_.keys();
  if (!keys) return keys.error();
  for (const sm_addr& k : *keys) {
    auto owner = addrs_.get(k);
    if (!owner) return owner.error();
    if (*owner && **owner == cookie)
      if (Status s = addrs_.erase(k); !s) return s;
  }
  return {};
}

Status Mesh::adopt_listeners(const host::Netns& ns, uint16_t inbound_port) {
  auto socks = host::find_listeners(ns, inbound_port);
  if (!socks) return socks.error();
  for (const auto& l : *socks) {
    sm_listen_key k{};
    k.netns_cookie = ns.cookie;
    k.family = static_cast<uint32_t>(l.family);
    if (Status s = listen_.put(k, static_cast<uint64_t>(l.fd.get())); !s) return s;
  }
  return {};
}

Status Mesh::enroll(const host::Netns& ns, const WorkloadSettings& s) {
  if (auto gone = collect_gone(); !gone) return gone.error();
  if (Status st = claim_addresses(ns); !st) return st;
  if (Status st = sm::enroll(*store_, ns.cookie, ns.inode, s); !st) return st;
  auto change = attach_inbound(ns.cookie, &ns, nullptr);
  Status adopted = change ? adopt_listeners(ns, s.inbound_port) : Status(change.error());
  if (!adopted) {
    (void)unenroll(ns.cookie);  // nothing half-enrolled
    return adopted;
  }
  return {};
}

Result<bool> Mesh::unenroll(uint64_t cookie) {
  auto was = sm::unenroll(*store_, cookie);
  if (!was) return was.error();
  std::string link = pins_.link(PinLayout::inbound_link_name(cookie));
  bool had_link = ::unlink(link.c_str()) == 0;
  if (!had_link && errno != ENOENT) return errno_error("unlink " + link);
  for (uint32_t family : {uint32_t{AF_INET}, uint32_t{AF_INET6}}) {
    sm_listen_key k{};
    k.netns_cookie = cookie;
    k.family = family;
    if (Status s = listen_.erase(k); !s) return s.error();
  }
  if (Status s = release_addresses(cookie); !s) return s.error();
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

Result<std::vector<std::pair<std::string, bpf::LinkChange>>> Mesh::refresh_inbound_links(
    bpf::LinkTransaction& tx) {
  std::vector<std::pair<std::string, bpf::LinkChange>> out;
  auto wls = store_->workloads();
  if (!wls) return wls.error();
  for (const auto& [cookie, value] : *wls) {
    if (!host::path_exists(pins_.link(PinLayout::inbound_link_name(cookie)))) continue;
    auto change = attach_inbound(cookie, nullptr, &tx);
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

Result<sm_config> Mesh::config() const {
  auto cur = config_.get(0);
  if (!cur) return cur.error();
  return cur->value_or(sm_config{});
}

Status Mesh::set_config(const sm_config& c) {
  return config_.put(0, c);
}

Result<sm_stats> Mesh::stats() const {
  return bpf::sum_percpu<sm_stats>(stats_, 0);
}

}  // namespace sm
