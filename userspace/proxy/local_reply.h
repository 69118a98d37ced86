// Replies the proxy writes itself (Envoy's "local replies": no route, no healthy upstream,
// timeouts, bad requests...) and the response flags that name why, as Envoy's access log
// and stats do. One builder, so every local reply has the same shape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sm::proxy {

// Envoy's response flags (%RESPONSE_FLAGS%), the ones this proxy can produce.
enum class ResponseFlag : uint8_t {
  none,                               // -
  no_healthy_upstream,                // UH
  upstream_connect_failure,           // UF
  upstream_overflow,                  // UO: circuit breaker
  no_route,                           // NR
  upstream_retry_limit_exceeded,      // URX
  upstream_request_timeout,           // UT
  upstream_reset,                     // UR: reset after the response started
  upstream_connection_termination,    // UC: closed or reset before the response
  upstream_protocol_error,            // UPE
  downstream_protocol_error,          // DPE
  downstream_connection_termination,  // DC
  downstream_request_timeout,         // DRT: the request head did not arrive in time (ours)
  stream_idle_timeout,                // SI
  fault_abort,                        // FI: fault injection answered (a delay shows as DI)
};
const char* flag_name(ResponseFlag f);

struct LocalReply {
  uint16_t status;
  std::string_view body;  // text/plain
  ResponseFlag flag;
};

// "HTTP/1.1 <status> <reason>" with content-length, content-type, server: sockmesh, the
// request's x-request-id when known and "connection: close" when the connection ends.
void write_local_reply(std::string& out, const LocalReply& r, std::string_view request_id,
                       bool close);
const char* reason_phrase(int status);

// The bodies Envoy writes for these failures, byte for byte where Envoy has one.
namespace reply {
constexpr std::string_view kOverflow =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";
constexpr std::string_view kConnectFailure =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
constexpr std::string_view kLocalError =
    "upstream connect error or disconnect/reset before headers. reset reason: local error";
constexpr std::string_view kTermination =
    "upstream connect error or disconnect/reset before headers. reset reason: connection "
    "termination";
constexpr std::string_view kNoHealthyUpstream = "no healthy upstream";
constexpr std::string_view kUpstreamTimeout = "upstream request timeout";
constexpr std::string_view kStreamTimeout = "stream timeout";
constexpr std::string_view kRequestTimeout = "request timeout";
constexpr std::string_view kBadResponse = "upstream sent an invalid response";
constexpr std::string_view kFaultAbort = "fault filter abort";
constexpr std::string_view kTooMany1xx = "upstream sent too many interim responses";
}  // namespace reply

}  // namespace sm::proxy
