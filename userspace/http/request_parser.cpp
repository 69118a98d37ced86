// Request line, request-target forms and request semantics (RFC 9112 3, 6; RFC 9110 7.2).
#include "http/request_parser.h"

#include "http/ascii.h"

namespace sm::http {

ParseResult RequestParser::parse(std::string_view buf) {
  if (!result_.need_more()) return result_;
  if (!in_fields()) {
    std::string_view line;
    if (take_start_line(buf, /*is_request=*/true, line) != Step::line) return result_;
    if (!parse_request_line(buf, line)) return result_;
  }
  const ParseResult r = take_fields(buf);
  if (!r.complete()) return r;
  return finish(buf);
}

bool RequestParser::parse_request_line(std::string_view buf, std::string_view line) {
  // request-line = method SP request-target SP HTTP-version, single spaces (RFC 9112 3).
  const size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) {
    fail(400, "malformed request line");
    return false;
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    fail(400, "malformed request line");
    return false;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  uint8_t major = 0, minor = 0;
  if (!parse_version(version, major, minor)) {
    fail(400, "malformed HTTP version");
    return false;
  }
  // RFC 9110 2.5 would read HTTP/1.2..1.9 as 1.1, but no client sends them and the version
  // is forwarded as received: refusing is simpler than rewriting it.
  if (major != 1 || minor > 1) {
    fail(505, "HTTP version not supported");
    return false;
  }
  if (!ascii::all_of(target, ascii::kTarget)) {
    fail(400, "invalid character in request target");
    return false;
  }
  // The method's characters were checked as they arrived (scan_method_prefix).
  head_.method = method_from(method);
  head_.version_minor = minor;
  if (target == "*") {
    head_.target_form = TargetForm::asterisk;
  } else if (head_.method == Method::connect) {
    head_.target_form = TargetForm::authority;
  } else if (target.front() == '/') {
    head_.target_form = TargetForm::origin;
  } else {
    head_.target_form = TargetForm::absolute;
  }
  method_off_ = offset_in(buf, method);
  method_len_ = static_cast<uint32_t>(method.size());
  target_off_ = offset_in(buf, target);
  target_len_ = static_cast<uint32_t>(target.size());
  version_off_ = offset_in(buf, version);
  return true;
}

// authority = host [":" port]; userinfo ('@') is refused (RFC 9110 4.2.4), which the
// character class already does.
static bool valid_authority(std::string_view a, bool port_required) {
  if (a.empty() || !ascii::all_of(a, ascii::kHost)) return false;
  const size_t colon = a.rfind(':');
  const size_t bracket = a.rfind(']');
  const bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  if (!has_port) return !port_required;
  const std::string_view port = a.substr(colon + 1);
  if (colon == 0) return false;
  for (char c : port) {
    if (!ascii::is_digit(c)) return false;
  }
  return !port.empty() || !port_required;
}

// Envoy's rule: the authority of an absolute-form or authority-form target wins over Host
// (RFC 9112 3.2.2 asks origin servers to ignore Host then).
bool RequestParser::derive_authority(std::string_view host) {
  const std::string_view target = head_.target;
  switch (head_.target_form) {
    case TargetForm::asterisk:
      if (head_.method != Method::options) {
        fail(400, "asterisk-form target is for OPTIONS only");
        return false;
      }
      head_.authority = host;
      return true;
    case TargetForm::origin:
      head_.authority = host;
      return true;
    case TargetForm::authority:
      if (!valid_authority(target, /*port_required=*/true)) {
        fail(400, "CONNECT target must be host:port");
        return false;
      }
      head_.authority = target;
      return true;
    case TargetForm::absolute: {
      // "http" or "https" "://" authority [path-abempty] ["?" query]. Other schemes have
      // no route in a mesh, and parsers disagree on which scheme characters they allow.
      const size_t colon = target.find("://");
      const std::string_view scheme = target.substr(0, colon);
      if (colon == std::string_view::npos ||
          !(ascii::iequals(scheme, "http") || ascii::iequals(scheme, "https"))) {
        fail(400, "invalid request target");
        return false;
      }
      std::string_view rest = target.substr(colon + 3);
      const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
      if (!valid_authority(authority, /*port_required=*/false)) {
        fail(400, "invalid authority in request target");
        return false;
      }
      head_.authority = authority;
      return true;
    }
  }
  return true;
}

ParseResult RequestParser::finish(std::string_view buf) {
  const FieldFacts& f = facts();
  head_.method_text = buf.substr(method_off_, method_len_);
  head_.target = buf.substr(target_off_, target_len_);
  head_.version = buf.substr(version_off_, 8);
  head_.headers = fields(buf);
  head_.head_size = head_end();
  const bool http11 = head_.version_minor == 1;

  // RFC 9112 3.2: exactly one Host on HTTP/1.1, at most one on HTTP/1.0.
  if (f.host_count > 1) return fail(400, "multiple Host fields");
  if (http11 && f.host_count == 0) return fail(400, "missing Host");
  std::string_view host;
  if (f.host_index >= 0) {
    host = head_.headers[static_cast<size_t>(f.host_index)].value;
    if (!host.empty() && !valid_authority(host, /*port_required=*/false)) {
      return fail(400, "invalid Host");
    }
  }
  if (!derive_authority(host)) return result_;

  // Body framing, RFC 9112 6.1-6.3, refusing every ambiguous combination: a proxy that
  // frames a request differently from the server behind it is a smuggling vector.
  if (f.transfer_encoding_seen) {
    if (!http11) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f.content_length_seen) return fail(400, "Content-Length with Transfer-Encoding");
    if (!f.chunked_last) return fail(400, "chunked is not the final transfer coding");
    if (f.chunked_count > 1) return fail(400, "chunked applied more than once");
    if (f.other_coding) return fail(501, "unsupported transfer coding");
    head_.body = {BodyKind::chunked, 0};
  } else if (f.content_length_seen && f.content_length > 0) {
    head_.body = {BodyKind::length, f.content_length};
  } else {
    head_.body = {BodyKind::none, 0};
  }
  if (head_.is_connect() && head_.body.kind != BodyKind::none) {
    return fail(400, "CONNECT request with a body");  // RFC 9110 9.3.6
  }

  head_.keep_alive = http11 ? !f.close : (f.keep_alive && !f.close);
  // RFC 9110 10.1.1 and 7.8: HTTP/1.0 requests ignore 100-continue and Upgrade.
  head_.expect_continue = http11 && f.expect_continue;
  head_.upgrade = http11 && f.connection_upgrade && f.upgrade_index >= 0 && !head_.is_connect();
  result_ = ParseResult::done(head_.head_size);
  return result_;
}

}  // namespace sm::http
