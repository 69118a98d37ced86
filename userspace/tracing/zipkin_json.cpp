// Zipkin v2 JSON; see zipkin_json.h.
#include "tracing/zipkin_json.h"

#include <arpa/inet.h>

#include <cstdio>

namespace sm::tracing {
namespace {

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          // Bytes >= 0x80 pass through: header values are opaque octets; a collector
          // reading them as UTF-8 may replace invalid sequences, which is all it can do.
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void append_member(std::string& out, bool& first, std::string_view name) {
  if (!first) out.push_back(',');
  first = false;
  append_string(out, name);
  out.push_back(':');
}

// "ipv4" for IPv4 and v4-mapped IPv6 (Zipkin prefers the ipv4 field for those), "ipv6"
// for other IPv6, "" for text that is neither.
std::string_view ip_field(const std::string& ip, std::string& normalized) {
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
    normalized = ip;
    return "ipv4";
  }
  if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
    char buf[INET6_ADDRSTRLEN];
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof buf);
      normalized = buf;
      return "ipv4";
    }
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    normalized = buf;
    return "ipv6";
  }
  return "";
}

void append_endpoint(std::string& out, bool& first, std::string_view name, const Endpoint& e) {
  std::string ip;
  std::string_view field = e.ip.empty() ? "" : ip_field(e.ip, ip);
  if (e.service_name.empty() && field.empty() && e.port == 0) return;
  append_member(out, first, name);
  out.push_back('{');
  bool f = true;
  if (!e.service_name.empty()) {
    append_member(out, f, "serviceName");
    append_string(out, e.service_name);
  }
  if (!field.empty()) {
    append_member(out, f, field);
    append_string(out, ip);
  }
  if (e.port != 0) {
    append_member(out, f, "port");
    out += std::to_string(e.port);
  }
  out.push_back('}');
}

}  // namespace

void append_span_json(std::string& out, const Span& s) {
  out.push_back('{');
  bool first = true;
  append_member(out, first, "traceId");
  append_string(out, s.trace_id.hex());
  if (s.parent_id != 0) {
    append_member(out, first, "parentId");
    append_string(out, hex64(s.parent_id));
  }
  append_member(out, first, "id");
  append_string(out, hex64(s.id));
  append_member(out, first, "kind");
  append_string(out, s.kind == SpanKind::client ? "CLIENT" : "SERVER");
  if (!s.name.empty()) {
    append_member(out, first, "name");
    append_string(out, s.name);
  }
  append_member(out, first, "timestamp");
  out += std::to_string(s.timestamp_us);
  append_member(out, first, "duration");
  out += std::to_string(s.duration_us < 1 ? 1 : s.duration_us);  // "rounded up" to 1
  if (s.debug) {
    append_member(out, first, "debug");
    out += "true";
  }
  if (s.shared) {
    append_member(out, first, "shared");
    out += "true";
  }
  append_endpoint(out, first, "localEndpoint", s.local);
  append_endpoint(out, first, "remoteEndpoint", s.remote);
  if (!s.tags.empty()) {
    append_member(out, first, "tags");
    out.push_back('{');
    bool f = true;
    for (const auto& [k, v] : s.tags) {
      append_member(out, f, k);
      append_string(out, v);
    }
    out.push_back('}');
  }
  out.push_back('}');
}

std::string encode_spans(std::span<const Span> spans) {
  std::string out = "[";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i) out.push_back(',');
    append_span_json(out, spans[i]);
  }
  out.push_back(']');
  return out;
}

}  // namespace sm::tracing
