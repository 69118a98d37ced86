// An install of sockmesh on this host: creating/upgrading/removing it (install,
// uninstall) and working with an existing one through its pins (Mesh: enrollment,
// splice switch, counters). Each kernel handle has one owner here.
#pragma once

#include <memory>
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
  bool splice = true;
};

struct InstallReport {
  std::string cgroup;
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
    {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME},
    {"connect4", BPF_CGROUP_INET4_CONNECT},
};
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
  // Re-attaches every enrolled netns's sk_lookup with the current programs (install).
  Result<std::vector<std::pair<std::string, bpf::LinkChange>>> refresh_inbound_links();

  Status set_splice(bool on);
  Result<bool> splice() const;
  Result<sm_stats> stats() const;

 private:
  Mesh(PinLayout pins, std::unique_ptr<BpfWorkloadStore> store, bpf::MapHandle listen,
       bpf::MapHandle stats, bpf::MapHandle config)
      : pins_(std::move(pins)),
        store_(std::move(store)),
        listen_(std::move(listen)),
        stats_(std::move(stats)),
        config_(std::move(config)) {}
  Result<bpf::LinkChange> attach_inbound(uint64_t cookie, const host::Netns* ns);

  PinLayout pins_;
  std::unique_ptr<BpfWorkloadStore> store_;
  bpf::Map<uint64_t, uint64_t> listen_;
  bpf::MapHandle stats_;
  bpf::Map<uint32_t, sm_config> config_;
};

}  // namespace sm
