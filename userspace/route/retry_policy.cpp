// Retry decisions; see retry_policy.h. The semantics follow Envoy's RetryStateImpl
// (wouldRetryFromReset / wouldRetryFromHeaders).
#include "route/retry_policy.h"

#include <algorithm>
#include <array>
#include <utility>

namespace sm::route {
namespace {

constexpr std::array<std::pair<std::string_view, uint32_t>, 7> kRetryOnNames{{
    {"5xx", retry_on::k5xx},
    {"gateway-error", retry_on::kGatewayError},
    {"reset", retry_on::kReset},
    {"connect-failure", retry_on::kConnectFailure},
    {"refused-stream", retry_on::kRefusedStream},
    {"retriable-4xx", retry_on::kRetriable4xx},
    {"retriable-status-codes", retry_on::kRetriableStatusCodes},
}};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

Result<uint32_t> parse_retry_on(std::string_view text, std::string_view field) {
  uint32_t bits = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    auto it = std::find_if(kRetryOnNames.begin(), kRetryOnNames.end(),
                           [&](const auto& n) { return n.first == item; });
    if (it == kRetryOnNames.end()) {
      std::string msg(field);
      msg += ": unknown retry condition '";
      msg += item;
      msg += "' (known: ";
      for (size_t i = 0; i < kRetryOnNames.size(); ++i) {
        if (i) msg += ", ";
        msg += kRetryOnNames[i].first;
      }
      msg += ")";
      return plain_error(std::move(msg));
    }
    bits |= it->second;
  }
  return bits;
}

std::string format_retry_on(uint32_t bits) {
  std::string out;
  for (const auto& [name, bit] : kRetryOnNames) {
    if (!(bits & bit)) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

bool RetryPolicy::retriable(RetryReason reason) const {
  // A reset of any kind is answered downstream with a 5xx, so Envoy lets 5xx and
  // gateway-error cover it; connect-failure and refused-stream are the narrow variants.
  constexpr uint32_t kAnyReset = retry_on::kReset | retry_on::k5xx | retry_on::kGatewayError;
  switch (reason.kind) {
    case FailureKind::overflow:
      return false;
    case FailureKind::connect_failure:
      return retry_on & (kAnyReset | retry_on::kConnectFailure);
    case FailureKind::refused_stream:
      return retry_on & (kAnyReset | retry_on::kRefusedStream);
    case FailureKind::reset:
    case FailureKind::per_try_timeout:
      return retry_on & kAnyReset;
    case FailureKind::response:
      break;
  }
  const uint16_t s = reason.status;
  if ((retry_on & retry_on::k5xx) && s >= 500 && s <= 599) return true;
  if ((retry_on & retry_on::kGatewayError) && s >= 502 && s <= 504) return true;
  if ((retry_on & retry_on::kRetriable4xx) && s == 409) return true;
  if (retry_on & retry_on::kRetriableStatusCodes) {
    return std::find(retriable_status_codes.begin(), retriable_status_codes.end(), s) !=
           retriable_status_codes.end();
  }
  return false;
}

bool RetryPolicy::should_retry(RetryReason reason, uint32_t retries_done) const {
  return retries_done < num_retries && retriable(reason);
}

Duration RetryPolicy::backoff(uint32_t retries_done, uint64_t random) const {
  const int64_t max = max_interval.count();
  int64_t ceiling = base_interval.count();
  for (uint32_t i = 0; i < retries_done && ceiling < max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max);
  if (ceiling <= 0) return Duration(0);
  return Duration(static_cast<int64_t>(random % static_cast<uint64_t>(ceiling)));
}

}  // namespace sm::route
