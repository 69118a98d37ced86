// B3 extraction; see b3.h.
#include "tracing/b3.h"

#include "http/ascii.h"

namespace sm::tracing {
namespace {

Sampling sampling_of(std::string_view v, bool& debug) {
  if (v == "1" || http::ascii::iequals(v, "true")) return Sampling::sample;
  if (v == "0" || http::ascii::iequals(v, "false")) return Sampling::drop;
  if (v == "d") {
    debug = true;
    return Sampling::sample;
  }
  return Sampling::unset;
}

}  // namespace

B3 parse_b3_single(std::string_view value) {
  B3 b;
  // Sampling state only: "0", "1" or "d" (a deny or accept with no ids).
  if (value.size() == 1) {
    b.sampling = sampling_of(value, b.debug);
    if (b.sampling == Sampling::unset) b.malformed = "b3: unknown sampling state";
    return b;
  }
  std::string_view parts[4];
  size_t n = 0;
  for (size_t start = 0;;) {
    size_t dash = value.find('-', start);
    if (n == 4) {
      b.malformed = "b3: too many fields";
      return b;
    }
    parts[n++] = value.substr(start, dash == std::string_view::npos ? dash : dash - start);
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  auto trace = parse_trace_id(parts[0]);
  auto span = n > 1 ? parse_span_id(parts[1]) : std::nullopt;
  if (!trace || !span) {
    b.malformed = "b3: trace or span id is not 16/32 hex digits";
    return b;
  }
  if (n > 2) {
    b.sampling = sampling_of(parts[2], b.debug);
    if (b.sampling == Sampling::unset) {
      b.malformed = "b3: unknown sampling state";
      return b;
    }
  }
  if (n > 3) {
    auto parent = parse_span_id(parts[3]);
    if (!parent) {
      b.malformed = "b3: parent span id is not 16 hex digits";
      b.sampling = Sampling::unset;
      b.debug = false;
      return b;
    }
    b.parent_id = *parent;
  }
  b.trace_id = trace;
  b.span_id = *span;
  return b;
}

B3 extract_b3(const http::HeaderList& headers) {
  // One pass over the fields (this runs for every request): the first of each name counts.
  const http::Header *single = nullptr, *trace = nullptr, *span = nullptr, *parent = nullptr,
                     *sampled = nullptr, *flags = nullptr;
  for (const http::Header& h : headers) {
    auto is = [&](const http::Header*& slot, std::string_view name) {
      if (!slot && http::ascii::iequals(h.name, name)) slot = &h;
    };
    switch (h.name.size()) {
      case 2:
        is(single, "b3");
        break;
      case 10:
        is(flags, "x-b3-flags");
        break;
      case 11:
        is(span, "x-b3-spanid");
        break;
      case 12:
        is(trace, "x-b3-traceid");
        is(sampled, "x-b3-sampled");
        break;
      case 17:
        is(parent, "x-b3-parentspanid");
        break;
      default:
        break;
    }
  }
  if (single) {
    B3 b = parse_b3_single(single->value);
    if (b.malformed.empty()) return b;
    // A malformed single header falls back to the multi headers, as Envoy does.
  }
  B3 b;
  if (flags && flags->value == "1") b.debug = true;
  if (sampled) {
    bool ignored = false;
    b.sampling = sampling_of(sampled->value, ignored);
  }
  if (b.debug) b.sampling = Sampling::sample;
  if (!trace && !span) return b;
  auto t = trace ? parse_trace_id(trace->value) : std::nullopt;
  auto s = span ? parse_span_id(span->value) : std::nullopt;
  if (!t || !s) {
    b.malformed = "x-b3-traceid/x-b3-spanid missing or not 16/32 hex digits";
    return b;
  }
  if (parent) {
    auto p = parse_span_id(parent->value);
    if (!p) {
      b.malformed = "x-b3-parentspanid is not 16 hex digits";
      return b;
    }
    b.parent_id = *p;
  }
  b.trace_id = t;
  b.span_id = *s;
  return b;
}

}  // namespace sm::tracing
