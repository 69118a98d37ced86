// Reads Istio VirtualService and DestinationRule documents (YAML, multi-document, or JSON)
// into a RuleSet. A document is all or nothing: an unknown field, a wrong type or a broken
// value rejects the whole source with the reason and the field's path, so the caller keeps
// the rules it had. A field Istio defines but sockmesh does not implement is accepted and
// reported by name in RuleSet::unsupported; so is a whole kind (Gateway, ServiceEntry...).
#pragma once

#include <string>
#include <string_view>

#include "istio/rules.h"
#include "sockmesh/result.h"

namespace sm::istio {

// `source` names where the text came from, for errors and reports ("rules/reviews.yaml").
// Errors read "rules/reviews.yaml#2 VirtualService reviews: spec.http[0].route[0].weight:
// must be an integer 0..100".
Result<RuleSet> parse_rules(std::string_view text, const std::string& source);

// Istio's durations: "10s", "0.5s", "100ms", "1m", "1h" (protobuf's form, and Go's units).
Result<Duration> parse_istio_duration(std::string_view text, std::string_view field);

}  // namespace sm::istio
