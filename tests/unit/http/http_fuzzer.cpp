// libFuzzer target over sm_http: request and response heads fed whole and in pieces from a
// moving buffer must agree, bodies framed whole and in pieces must agree, written heads
// must parse back to the same head, and llhttp (the differential reference) must agree on
// every request sm_http accepts, except for the documented differences in
// docs/HTTP_PARSER.md. A disagreement aborts, so libFuzzer keeps the input.
//
// Input: one control byte, then the message bytes. Control bits: 0-3 piece size - 1,
// 4 small limits, 5 response instead of request, 6-7 the request method a response answers
// (GET, HEAD, CONNECT, POST).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "http/ascii.h"
#include "http/body_framer.h"
#include "http/head_writer.h"
#include "http/llhttp_request_parser.h"
#include "http/request_parser.h"
#include "http/response_parser.h"

namespace sm::http {
namespace {

[[noreturn]] void disagree(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "DISAGREEMENT: %s\n  a: %s\n  b: %s\n", what, a.c_str(), b.c_str());
  std::abort();
}

std::string describe(const ParseResult& r) {
  const char* s = r.complete() ? "complete" : r.need_more() ? "need_more" : "error";
  return std::string(s) + " " + std::to_string(r.consumed) + " " + std::to_string(r.error.status) +
         " " + std::string(r.error.reason);
}

std::string fields(const HeaderList& headers) {
  std::string s;
  for (const Header& h : headers)
    s += "[" + std::string(h.name) + ": " + std::string(h.value) + "]";
  return s;
}

// Everything but head_size, which the writer changes (whitespace, leading CRLFs).
std::string meaning(const RequestHead& h) {
  return std::string(h.method_text) + " " + std::string(h.target) + " " + std::string(h.version) +
         " auth=" + std::string(h.authority) + " form=" + std::to_string(int(h.target_form)) +
         " body=" + std::to_string(int(h.body.kind)) + ":" + std::to_string(h.body.length) +
         " ka=" + std::to_string(h.keep_alive) + " exp=" + std::to_string(h.expect_continue) +
         " up=" + std::to_string(h.upgrade) + " " + fields(h.headers);
}

std::string meaning(const ResponseHead& h) {
  return std::string(h.version) + " " + std::to_string(h.status) + " " + std::string(h.reason) +
         " body=" + std::to_string(int(h.body.kind)) + ":" + std::to_string(h.body.length) +
         " ka=" + std::to_string(h.keep_alive) + " " + fields(h.headers);
}

Limits limits_for(uint8_t control) {
  Limits l;
  if (control & 0x10) {
    l.max_start_line = 48;
    l.max_head_bytes = 160;
    l.max_headers = 6;
    l.max_chunk_line = 12;
    l.max_trailer_bytes = 40;
  }
  return l;
}

// Feeds growing prefixes, alternating between two copies of the input so that the buffer
// moves on every call, as a reallocated receive buffer would.
template <class Parser>
ParseResult parse_in_pieces(Parser& p, std::string_view a, std::string_view b, size_t piece) {
  ParseResult r;
  size_t n = 0, calls = 0;
  do {
    n = std::min(a.size(), n + piece);
    r = p.parse((calls++ % 2 ? b : a).substr(0, n));
  } while (r.need_more() && n < a.size());
  return r;
}

void check_body(BodyFraming framing, const Limits& limits, std::string_view rest, size_t piece) {
  BodyFramer whole(limits), pieces(limits);
  whole.reset(framing);
  pieces.reset(framing);
  const ParseResult w = whole.feed(rest);
  ParseResult p;
  size_t total = 0;
  for (size_t off = 0; off < rest.size() || off == 0; off += piece) {
    p = pieces.feed(rest.substr(off, piece));
    total += p.consumed;
    if (!p.need_more()) break;
  }
  p.consumed = p.failed() ? 0 : total;
  if (describe(w) != describe(p)) disagree("body whole vs pieces", describe(w), describe(p));
  if (w.consumed > rest.size()) disagree("body consumed past its input", describe(w), "");
}

Limits relaxed_limits() {
  Limits l;
  l.max_start_line = l.max_head_bytes = 1u << 20;
  l.max_headers = 1000;
  return l;
}

template <class Parser, class Head>
void check_round_trip(const Head& head, Parser& reparser) {
  // The size contract: ask with no room, then write into exactly that much.
  const size_t n = write_head(head, {}, {});
  std::vector<char> out(n);
  if (write_head(head, {}, std::span<char>(out)) != n) disagree("writer size changed", "", "");
  const ParseResult r = reparser.parse(std::string_view(out.data(), n));
  if (!r.complete() || r.consumed != n)
    disagree("written head does not parse back", describe(r), "");
  if (meaning(head) != meaning(reparser.head())) {
    disagree("written head means something else", meaning(head), meaning(reparser.head()));
  }
}

// The writer's output must stay a valid head after the proxy's edits, framed the same.
void check_edited(const RequestHead& head) {
  static constexpr Header kSet[] = {{"server", "sockmesh"}};
  static constexpr Header kAdd[] = {{"x-request-id", "0f1e2d3c"}, {"x-forwarded-proto", "http"}};
  HeadEdits edits;
  edits.remove_hop_by_hop = true;
  edits.set = kSet;
  edits.add = kAdd;
  std::vector<char> out(head.head_size * 2 + 128);
  const size_t n = write_head(head, edits, std::span<char>(out));
  if (n > out.size()) disagree("edited head larger than expected", std::to_string(n), "");
  RequestParser p(relaxed_limits());
  const ParseResult r = p.parse(std::string_view(out.data(), n));
  if (!r.complete()) disagree("edited head does not parse", describe(r), "");
  if (!(p.head().body == head.body) || p.head().authority != head.authority) {
    disagree("edited head framed differently", meaning(head), meaning(p.head()));
  }
}

size_t count_content_length_values(const HeaderList& headers) {
  size_t n = 0;
  for (const Header& h : headers) {
    if (!ascii::iequals(h.name, "content-length")) continue;
    ListReader list(h.value);
    std::string_view item;
    while (list.next(item)) ++n;
  }
  return n;
}

// llhttp 8.1 does not take HTAB as OWS (RFC 9110 5.6.1, 5.6.3) around token-valued fields:
// "chunked<HTAB>" is not chunked to it, "1<HTAB>" not a length, "close<HTAB>" not close,
// and neither is "keep-alive<HTAB>, other" or "keep-alive<HTAB><SP>, other" keep-alive (HTAB
// anywhere in the OWS before a list's comma).
bool tab_before_comma(std::string_view value) {
  for (size_t i = value.find('\t'); i != std::string_view::npos; i = value.find('\t', i + 1)) {
    size_t j = i;
    while (j < value.size() && (value[j] == '\t' || value[j] == ' ')) ++j;
    if (j < value.size() && value[j] == ',') return true;
  }
  return false;
}

bool trailing_tab(const HeaderList& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (!ascii::iequals(h.name, name)) continue;
    if (tab_before_comma(h.value)) return true;
    // The parsed value is trimmed; the OWS it lost sits between its end and the CR.
    for (const char* p = h.value.data() + h.value.size(); *p != '\r'; ++p) {
      if (*p == '\t') return true;
    }
  }
  return false;
}

// Where sm_http accepts a head that llhttp rejects, the reason must be a documented one.
bool documented_acceptance(const RequestHead& ours, const LlhttpRequestParser& ref) {
  switch (ref.error()) {
    case HPE_INVALID_METHOD:  // extension methods: llhttp knows a fixed list,
      return ours.method == Method::other;
    case HPE_INVALID_CONSTANT:  // and takes RTSP's (SETUP, PLAY...) only with RTSP/1.0
      return ours.method == Method::other &&
             std::string_view(ref.reason()) == "Invalid method for HTTP/x.x request";
    case HPE_UNEXPECTED_CONTENT_LENGTH:  // identical Content-Length values, repeated
      return count_content_length_values(ours.headers) > 1;
    case HPE_INVALID_CONTENT_LENGTH:  // or listed ("5, 5"): RFC 9110 8.6 allows both
      return count_content_length_values(ours.headers) > 1 ||
             trailing_tab(ours.headers, "content-length");
    default:
      return false;
  }
}

// llhttp 8.1 refuses some valid chunk extensions (";a=b;c", quoted-pairs). Chunk
// extensions do not move a body's end, so a refusal inside one is a documented difference.
bool in_chunk_extension(std::string_view body, size_t error_offset) {
  if (error_offset >= body.size()) return false;
  const size_t line = body.rfind('\n', error_offset);
  const size_t start = line == std::string_view::npos ? 0 : line + 1;
  return body.substr(start, error_offset - start).find(';') != std::string_view::npos;
}

void differential(const RequestParser& ours, const ParseResult& r, std::string_view msg) {
  static LlhttpRequestParser ref;
  ref.reset();
  const ParseStatus s = ref.parse_head(msg);
  if (!r.complete()) return;  // sm_http is stricter: the documented list in HTTP_PARSER.md
  const RequestHead& h = ours.head();
  if (s == ParseStatus::error) {
    if (documented_acceptance(h, ref)) return;
    disagree("sm_http accepts a head llhttp rejects", meaning(h),
             std::string(llhttp_errno_name(ref.error())) + ": " + ref.reason());
  }
  if (s == ParseStatus::need_more)
    disagree("llhttp wants more of a head sm_http completed", meaning(h), "");
  const LlhttpRequestParser::Head& l = ref.head();
  std::string lfields;
  for (const Header& f : l.headers)
    lfields += "[" + std::string(f.name) + ": " + std::string(f.value) + "]";
  if (l.method != h.method_text || l.target != h.target || lfields != fields(h.headers) ||
      l.head_size != h.head_size) {
    disagree("heads differ", meaning(h) + " size=" + std::to_string(h.head_size),
             std::string(l.method) + " " + std::string(l.target) + " " + lfields +
                 " size=" + std::to_string(l.head_size));
  }
  const bool chunked = (l.flags & F_CHUNKED) != 0;
  const bool length = (l.flags & F_CONTENT_LENGTH) != 0 && l.content_length > 0;
  const bool agree = (h.body.kind == BodyKind::chunked) == chunked &&
                     (h.body.kind == BodyKind::length) == length &&
                     (!length || h.body.length == l.content_length);
  if (trailing_tab(h.headers, "transfer-encoding")) return;  // llhttp: not chunked, rejects
  if (!agree && (h.method != Method::connect)) {
    disagree("framing differs", meaning(h), "llhttp flags=" + std::to_string(l.flags));
  }
  // Connection: keep-alive and close together: close wins here, keep-alive in llhttp (1.0).
  const bool contradictory =
      h.headers.has_token("connection", "close") && h.headers.has_token("connection", "keep-alive");
  if (h.keep_alive != l.keep_alive && !trailing_tab(h.headers, "connection") && !contradictory) {
    disagree("keep-alive differs", meaning(h), "llhttp keep_alive=" + std::to_string(l.keep_alive));
  }
  if (h.is_connect() || h.upgrade) return;  // llhttp stops at the head: a tunnel follows

  // Where both read a body, they must end it at the same byte: that is what smuggling needs.
  BodyFramer framer;
  framer.reset(h.body);
  const std::string_view rest = msg.substr(h.head_size);
  const ParseResult b = framer.feed(rest);
  const ParseResult lb = ref.feed_body(rest);
  if (b.complete() && lb.complete() && b.consumed != lb.consumed) {
    disagree("body ends differ", describe(b), describe(lb));
  }
  if (b.complete() && !lb.complete() && !lb.failed())
    disagree("llhttp reads past our body end", describe(b), describe(lb));
  if (lb.complete() && b.need_more())
    disagree("sm_http reads past llhttp's body end", describe(b), describe(lb));
  if (b.complete() && lb.failed() && !in_chunk_extension(rest, ref.body_error_offset())) {
    disagree("sm_http accepts a body llhttp rejects", describe(b), describe(lb));
  }
}

void fuzz_request(uint8_t control, std::string_view a, std::string_view b) {
  const Limits limits = limits_for(control);
  const size_t piece = (control & 0x0f) + 1u;
  RequestParser whole(limits), pieces(limits);
  const ParseResult w = whole.parse(a);
  const ParseResult p = parse_in_pieces(pieces, a, b, piece);
  if (describe(w) != describe(p)) disagree("request whole vs pieces", describe(w), describe(p));
  if (w.complete()) {
    if (meaning(whole.head()) != meaning(pieces.head())) {
      disagree("request heads differ", meaning(whole.head()), meaning(pieces.head()));
    }
    check_body(whole.head().body, limits, a.substr(w.consumed), piece);
    RequestParser reparser(relaxed_limits());
    check_round_trip(whole.head(), reparser);
    check_edited(whole.head());
  }
  if (!(control & 0x10)) differential(whole, w, a);
}

void fuzz_response(uint8_t control, std::string_view a, std::string_view b) {
  static constexpr Method kMethods[] = {Method::get, Method::head, Method::connect, Method::post};
  const Method method = kMethods[control >> 6];
  const Limits limits = limits_for(control);
  const size_t piece = (control & 0x0f) + 1u;
  ResponseParser whole(limits), pieces(limits);
  whole.reset(method);
  pieces.reset(method);
  const ParseResult w = whole.parse(a);
  const ParseResult p = parse_in_pieces(pieces, a, b, piece);
  if (describe(w) != describe(p)) disagree("response whole vs pieces", describe(w), describe(p));
  if (w.failed() && w.error.status != 502) disagree("response error not 502", describe(w), "");
  if (!w.complete()) return;
  if (meaning(whole.head()) != meaning(pieces.head())) {
    disagree("response heads differ", meaning(whole.head()), meaning(pieces.head()));
  }
  check_body(whole.head().body, limits, a.substr(w.consumed), piece);
  ResponseParser reparser(relaxed_limits());
  reparser.reset(method);
  check_round_trip(whole.head(), reparser);
}

}  // namespace
}  // namespace sm::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  // Two copies at different addresses, each exactly sized so ASan sees any overread.
  std::vector<char> a(data + 1, data + size), b(data + 1, data + size);
  const std::string_view va(a.data(), a.size()), vb(b.data(), b.size());
  if (control & 0x20) {
    sm::http::fuzz_response(control, va, vb);
  } else {
    sm::http::fuzz_request(control, va, vb);
  }
  return 0;
}
