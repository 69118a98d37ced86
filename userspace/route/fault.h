// The fault-injection decision for one request, as pure logic: which of a route's faults
// (FaultConfig) apply, drawn from a caller-supplied random value so tests are deterministic.
// Percentages have a resolution of one in a million, as Envoy's FractionalPercent MILLION.
#pragma once

#include <cstdint>

#include "route/duration.h"
#include "route/route_config.h"

namespace sm::route {

struct FaultDecision {
  Duration delay{0};          // 0: none; otherwise hold the request this long (flag DI)
  uint16_t abort_status = 0;  // 0: none; otherwise answer this status upstream-free (flag FI)

  bool delayed() const { return delay.count() > 0; }
  bool aborted() const { return abort_status != 0; }
};

// Whether a draw of `random` falls in `percent` (0..100) percent of the space.
bool percent_hit(double percent, uint64_t random);

// Delay and abort are drawn independently (Envoy does: a request can be both delayed and
// then aborted), from two values derived from `random`.
FaultDecision decide_fault(const FaultConfig& fault, uint64_t random);

}  // namespace sm::route
