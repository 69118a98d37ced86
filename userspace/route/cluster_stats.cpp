// Cluster counters; see cluster_stats.h.
#include "route/cluster_stats.h"

namespace sm::route {

void ClusterStats::record_response(int status) {
  upstream_rq_completed.inc();
  switch (status / 100) {
    case 1:
      upstream_rq_1xx.inc();
      break;
    case 2:
      upstream_rq_2xx.inc();
      break;
    case 3:
      upstream_rq_3xx.inc();
      break;
    case 4:
      upstream_rq_4xx.inc();
      break;
    case 5:
      upstream_rq_5xx.inc();
      break;
    default:
      break;  // not a valid status: completed, but in no class
  }
}

void ClusterStats::append_to(std::vector<Stat>& out) const {
#define SM_APPEND_COUNTER(member, name) out.push_back({name, member.value(), StatType::counter});
  SM_CLUSTER_COUNTERS(SM_APPEND_COUNTER)
#undef SM_APPEND_COUNTER
}

bool ClusterStats::add(std::string_view stat, uint64_t n) {
#define SM_ADD_COUNTER(member, name) \
  if (stat == name) {                \
    member.inc(n);                   \
    return true;                     \
  }
  SM_CLUSTER_COUNTERS(SM_ADD_COUNTER)
#undef SM_ADD_COUNTER
  return false;
}

}  // namespace sm::route
