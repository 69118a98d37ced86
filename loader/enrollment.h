// Enrollment bookkeeping: which map entries a workload owns, and how an enroll, a
// re-enroll with other settings, or an unenroll changes them. The maps sit behind
// WorkloadStore so this logic is unit tested with a fake (no root, no kernel).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "workload.h"

namespace sm {

class WorkloadStore {
 public:
  virtual ~WorkloadStore() = default;
  virtual Result<std::vector<std::pair<uint64_t, sm_workload>>> workloads() const = 0;
  virtual Status put_workload(uint64_t netns_cookie, const sm_workload& w) = 0;
  virtual Status erase_workload(uint64_t netns_cookie) = 0;
  virtual Result<std::vector<sm_port_key>> ports() const = 0;
  virtual Status put_port(const sm_port_key& k) = 0;
  virtual Status erase_port(const sm_port_key& k) = 0;
  virtual Result<std::vector<sm_cidr_key>> cidrs() const = 0;
  virtual Status put_cidr(const sm_cidr_key& k) = 0;
  virtual Status erase_cidr(const sm_cidr_key& k) = 0;
};

struct Enrolled {
  uint64_t netns_cookie = 0;
  sm_workload value{};
  WorkloadSettings settings;
};

// Writes the rules first and the workload entry last (the entry is what makes the BPF
// programs act), then removes rules the new settings no longer have.
Status enroll(WorkloadStore& store, uint64_t netns_cookie, uint64_t netns_inode,
              const WorkloadSettings& s);
// Removes the workload entry first, then its rules. Returns false if it was not enrolled.
Result<bool> unenroll(WorkloadStore& store, uint64_t netns_cookie);
Result<std::vector<Enrolled>> list_enrolled(const WorkloadStore& store);

}  // namespace sm
