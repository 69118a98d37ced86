// Zipkin's v2 JSON encoding of spans (POST /api/v2/spans takes a list of them). Fields that
// are unknown are left out, as the API asks, never sent empty or zero.
#pragma once

#include <span>
#include <string>

#include "tracing/span.h"

namespace sm::tracing {

// Appends one span's JSON object to `out`.
void append_span_json(std::string& out, const Span& span);
// A JSON list of spans: the body of POST /api/v2/spans.
std::string encode_spans(std::span<const Span> spans);

}  // namespace sm::tracing
