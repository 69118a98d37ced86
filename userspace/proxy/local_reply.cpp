// Local replies; see local_reply.h.
#include "proxy/local_reply.h"

#include <charconv>

namespace sm::proxy {

const char* flag_name(ResponseFlag f) {
  switch (f) {
    case ResponseFlag::none:
      return "-";
    case ResponseFlag::no_healthy_upstream:
      return "UH";
    case ResponseFlag::upstream_connect_failure:
      return "UF";
    case ResponseFlag::upstream_overflow:
      return "UO";
    case ResponseFlag::no_route:
      return "NR";
    case ResponseFlag::upstream_retry_limit_exceeded:
      return "URX";
    case ResponseFlag::upstream_request_timeout:
      return "UT";
    case ResponseFlag::upstream_reset:
      return "UR";
    case ResponseFlag::upstream_connection_termination:
      return "UC";
    case ResponseFlag::upstream_protocol_error:
      return "UPE";
    case ResponseFlag::downstream_protocol_error:
      return "DPE";
    case ResponseFlag::downstream_connection_termination:
      return "DC";
    case ResponseFlag::downstream_request_timeout:
      return "DRT";
    case ResponseFlag::stream_idle_timeout:
      return "SI";
    case ResponseFlag::fault_abort:
      return "FI";
  }
  return "-";
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

void write_local_reply(std::string& out, const LocalReply& r, std::string_view request_id,
                       bool close) {
  char num[24];
  out.append("HTTP/1.1 ");
  auto [end, ec] = std::to_chars(num, num + sizeof num, r.status);
  (void)ec;  // a uint16_t always fits
  out.append(num, end).append(" ").append(reason_phrase(r.status));
  out.append("\r\ncontent-length: ");
  auto [bend, bec] = std::to_chars(num, num + sizeof num, r.body.size());
  (void)bec;
  out.append(num, bend);
  out.append("\r\ncontent-type: text/plain\r\nserver: sockmesh\r\n");
  if (!request_id.empty()) out.append("x-request-id: ").append(request_id).append("\r\n");
  if (close) out.append("connection: close\r\n");
  out.append("\r\n").append(r.body);
}

}  // namespace sm::proxy
