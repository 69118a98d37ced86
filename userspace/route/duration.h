// Time values of the routing model. Durations are spelled as protobuf's JSON form ("15s",
// "0.5s", "0.250s"), which is what Envoy and Istio print, so a /config_dump reads like theirs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "sockmesh/result.h"

namespace sm::route {

// Nanoseconds, like protobuf's Duration, so any value the JSON can hold round-trips exactly.
using Duration = std::chrono::nanoseconds;
// Ejections and the like are judged against a caller-supplied "now", so tests need no sleeps.
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// "<seconds>[.<up to 9 digits>]s"; negative values are rejected (no timeout here can be).
Result<Duration> parse_duration(std::string_view text, std::string_view field);
// Protobuf's canonical form: 0, 3, 6 or 9 fractional digits ("15s", "0.500s", "0.000001s").
std::string format_duration(Duration d);

}  // namespace sm::route
