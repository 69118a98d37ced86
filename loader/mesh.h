// An install of sockmesh on this host: creating/upgrading/removing it (install,
// uninstall) and working with an existing one through its pins (Mesh: enrollment,
// splice switch, counters). Each kernel handle has one owner here.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "abi.h"
#include "bpf_map.h"
#include "enrollment.h"
#include "links.h"
#include "pins.h"
#include "system.h"

namespace sm {

struct InstallOptions {
  std::string cgroup;  // empty: the cgroup v2 root from /proc/mounts
  PinLayout pins;
  // Socket splicing on or off; unset keeps what a running install has (on when new).
  std::optional<bool> splice;
};

struct InstallReport {
  std::string cgroup;
  bool splice = true;
  bool app_splice_safe = false;  // this kernel's probe result (see probe.h)
  std::string probe;             // what the probe saw; empty when it did not run (rerun)
  std::vector<std::pair<std::string, bpf::LinkChange>> links;
};

// Loads, pins and attaches; a rerun upgrades programs in place (bpf_link_update) or
// changes nothing, never attaches twice. On failure, removes what this run created.
Result<InstallReport> install(const InstallOptions& opts);
// Removes every link and map pin of the install (per-netns links included) and the pin
// directory. Programs go with their links. False if nothing was installed there.
Result<bool> uninstall(const PinLayout& pins);

// The cgroup programs of an install, by link name; the order is the attach order.
struct CgroupProgram {
  const char* link;
  bpf_attach_type attach_type;
};
inline constexpr CgroupProgram kCgroupPrograms[] = {
    {"sockops", BPF_CGROUP_SOCK_OPS},
    {"getsockopt", BPF_CGROUP_GETSOCKOPT},
    {"setsockopt", BPF_CGROUP_SETSOCKOPT},
    {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME},
    {"getpeername6", BPF_CGROUP_INET6_GETPEERNAME},
    {"connect4", BPF_CGROUP_INET4_CONNECT},
    {"connect6", BPF_CGROUP_INET6_CONNECT},
};
// Every map an install pins, by name; another sm_* pin means another layout.
inline constexpr const char* kMapNames[] = {
    SM_MAP_NETNS, SM_MAP_PORT,   SM_MAP_CIDR, SM_MAP_ADDR,  SM_MAP_ORIGDST,
    SM_MAP_SK,    SM_MAP_LISTEN, SM_MAP_SOCK, SM_MAP_STATS, SM_MAP_CONFIG};
inline constexpr const char* kSkMsgLink = "sk_msg";

class BpfWorkloadStore : public WorkloadStore {
 public:
  BpfWorkloadStore(bpf::MapHandle netns, bpf::MapHandle ports, bpf::MapHandle cidrs)
      : netns_(std::move(netns)), ports_(std::move(ports)), cidrs_(std::move(cidrs)) {}
  Result<std::vector<std::pair<uint64_t, sm_workload>>> workloads() const override;
  Status put_workload(uint64_t c, const sm_workload& w) override { return netns_.put(c, w); }
  Status erase_workload(uint64_t c) override { return netns_.erase(c); }
  Result<std::vector<sm_port_key>> ports() const override { return ports_.keys(); }
  Status put_port(const sm_port_key& k) override { return ports_.put(k, 1); }
  Status erase_port(const sm_port_key& k) override { return ports_.erase(k); }
  Result<std::vector<sm_cidr_key>> cidrs() const override { return cidrs_.keys(); }
  Status put_cidr(const sm_cidr_key& k) override { return cidrs_.put(k, 1); }
  Status erase_cidr(const sm_cidr_key& k) override { return cidrs_.erase(k); }

 private:
  bpf::Map<uint64_t, sm_workload> netns_;
  bpf::Map<sm_port_key, uint8_t> ports_;
  bpf::Map<sm_cidr_key, uint8_t> cidrs_;
};

class Mesh {
 public:
  static Result<Mesh> open(const PinLayout& pins);

  const PinLayout& pins() const { return pins_; }
  WorkloadStore& store() { return *store_; }
  const WorkloadStore& store() const { return *store_; }

  // Writes the workload's settings and attaches (or upgrades) its netns's sk_lookup.
  Status enroll(const host::Netns& ns, const WorkloadSettings& s);
  // False when the netns was not enrolled.
  Result<bool> unenroll(uint64_t netns_cookie);
  // Unenrolls workloads whose network namespace no longer exists; returns their cookies.
  Result<std::vector<uint64_t>> collect_gone();
  // Re-attaches every enrolled netns's sk_lookup with the current programs (install),
  // inside the install's transaction.
  Result<std::vector<std::pair<std::string, bpf::LinkChange>>> refresh_inbound_links(
      bpf::LinkTransaction& tx);

  Status set_splice(bool on);
  Result<sm_config> config() const;
  Status set_config(const sm_config& c);
  Result<sm_stats> stats() const;

 private:
  Mesh(PinLayout pins, std::unique_ptr<BpfWorkloadStore> store, bpf::MapHandle listen,
       bpf::MapHandle addrs, bpf::MapHandle stats, bpf::MapHandle config)
      : pins_(std::move(pins)),
        store_(std::move(store)),
        listen_(std::move(listen)),
        addrs_(std::move(addrs)),
        stats_(std::move(stats)),
        config_(std::move(config)) {}
  // The sk_lookup link of a netns: created (ns given) or upgraded in place (ns null).
  Result<bpf::LinkChange> attach_inbound(uint64_t cookie, const host::Netns* ns,
                                         bpf::LinkTransaction* tx);
  // Records which addresses this netns owns (splice keys); drops ones it no longer has.
  Status claim_addresses(const host::Netns& ns);
  Status release_addresses(uint64_t cookie);
  // A sidecar already listening when its netns is enrolled: register its listener(s).
  Status adopt_listeners(const host::Netns& ns, uint16_t inbound_port);

  PinLayout pins_;
  std::unique_ptr<BpfWorkloadStore> store_;
  bpf::Map<sm_listen_key, uint64_t> listen_;
  bpf::Map<sm_addr, uint64_t> addrs_;
  bpf::MapHandle stats_;
  bpf::Map<uint32_t, sm_config> config_;
};

}  // namespace sm
