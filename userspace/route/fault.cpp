// Fault decisions; see fault.h.
#include "route/fault.h"

#include <cmath>

namespace sm::route {
namespace {

constexpr uint64_t kMillion = 1'000'000;

// splitmix64: a second, independent draw from the one value the caller gave.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

bool percent_hit(double percent, uint64_t random) {
  if (!(percent > 0)) return false;
  const auto per_million = static_cast<uint64_t>(std::llround(percent * 10'000.0));
  return random % kMillion < per_million;
}

FaultDecision decide_fault(const FaultConfig& fault, uint64_t random) {
  FaultDecision d;
  if (fault.delay && percent_hit(fault.delay->percent, random)) d.delay = fault.delay->fixed_delay;
  if (fault.abort && percent_hit(fault.abort->percent, mix(random)))
    d.abort_status = fault.abort->http_status;
  return d;
}

}  // namespace sm::route
