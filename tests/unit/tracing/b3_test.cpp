// B3 extraction as Envoy's Zipkin tracer reads requests.
#include "tracing/b3.h"

#include <gtest/gtest.h>

#include <vector>

namespace sm::tracing {
namespace {

B3 extract(std::vector<http::Header> h) {
  return extract_b3(http::HeaderList(h));
}

TEST(B3, MultiHeadersGiveTheContext) {
  B3 b = extract({{"X-B3-TraceId", "463ac35c9f6413ad"},
                  {"x-b3-spanid", "a2fb4a1d1a96d312"},
                  {"x-b3-parentspanid", "0020000000000001"},
                  {"x-b3-sampled", "1"}});
  ASSERT_TRUE(b.has_context());
  EXPECT_EQ(b.trace_id->hex(), "463ac35c9f6413ad");
  EXPECT_FALSE(b.trace_id->wide);
  EXPECT_EQ(b.span_id, 0xa2fb4a1d1a96d312ull);
  EXPECT_EQ(b.parent_id, 0x0020000000000001ull);
  EXPECT_EQ(b.sampling, Sampling::sample);
  EXPECT_FALSE(b.debug);
  EXPECT_EQ(b.malformed, "");
}

TEST(B3, TraceIdsOf128BitsKeepTheirWidth) {
  B3 b = extract(
      {{"x-b3-traceid", "463AC35C9F6413AD48485A3953BB6124"}, {"x-b3-spanid", "a2fb4a1d1a96d312"}});
  ASSERT_TRUE(b.has_context());
  EXPECT_TRUE(b.trace_id->wide);
  EXPECT_EQ(b.trace_id->hex(), "463ac35c9f6413ad48485a3953bb6124");  // lower-case on the wire
  EXPECT_EQ(b.sampling, Sampling::unset);
}

TEST(B3, SampledValuesAsEnvoyReadsThem) {
  EXPECT_EQ(extract({{"x-b3-sampled", "1"}}).sampling, Sampling::sample);
  EXPECT_EQ(extract({{"x-b3-sampled", "true"}}).sampling, Sampling::sample);
  EXPECT_EQ(extract({{"x-b3-sampled", "0"}}).sampling, Sampling::drop);
  EXPECT_EQ(extract({{"x-b3-sampled", "false"}}).sampling, Sampling::drop);
  EXPECT_EQ(extract({{"x-b3-sampled", "yes"}}).sampling, Sampling::unset);
  // x-b3-flags: 1 is debug, which always samples, even over x-b3-sampled: 0.
  B3 d = extract({{"x-b3-flags", "1"}, {"x-b3-sampled", "0"}});
  EXPECT_TRUE(d.debug);
  EXPECT_EQ(d.sampling, Sampling::sample);
  // A sampling decision without ids is still a decision (no context).
  EXPECT_FALSE(extract({{"x-b3-sampled", "0"}}).has_context());
}

TEST(B3, MalformedIdsAreIgnoredButTheDecisionStands) {
  for (auto trace : {"463ac35c9f6413a", "463ac35c9f6413adx", "0000000000000000", "zz3ac35c9f6413ad",
                     "463ac35c9f6413ad48485a3953bb612"}) {
    B3 b = extract(
        {{"x-b3-traceid", trace}, {"x-b3-spanid", "a2fb4a1d1a96d312"}, {"x-b3-sampled", "1"}});
    EXPECT_FALSE(b.has_context()) << trace;
    EXPECT_NE(b.malformed, "") << trace;
    EXPECT_EQ(b.sampling, Sampling::sample) << trace;
  }
  EXPECT_FALSE(extract({{"x-b3-traceid", "463ac35c9f6413ad"}}).has_context());  // no span id
  EXPECT_FALSE(extract({{"x-b3-spanid", "a2fb4a1d1a96d312"}}).has_context());   // no trace id
  B3 p = extract({{"x-b3-traceid", "463ac35c9f6413ad"},
                  {"x-b3-spanid", "a2fb4a1d1a96d312"},
                  {"x-b3-parentspanid", "12"}});
  EXPECT_FALSE(p.has_context());
  EXPECT_NE(p.malformed, "");
}

TEST(B3, SingleHeaderForms) {
  B3 full = parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
  ASSERT_TRUE(full.has_context());
  EXPECT_TRUE(full.trace_id->wide);
  EXPECT_EQ(full.span_id, 0xe457b5a2e4d86bd1ull);
  EXPECT_EQ(full.parent_id, 0x05e3ac9a4f6e3b90ull);
  EXPECT_EQ(full.sampling, Sampling::sample);

  B3 ids = parse_b3_single("64fe8b2a57d3eff7-e457b5a2e4d86bd1");
  ASSERT_TRUE(ids.has_context());
  EXPECT_EQ(ids.sampling, Sampling::unset);
  EXPECT_EQ(ids.parent_id, 0u);

  B3 debug = parse_b3_single("64fe8b2a57d3eff7-e457b5a2e4d86bd1-d");
  EXPECT_TRUE(debug.debug);
  EXPECT_EQ(debug.sampling, Sampling::sample);

  EXPECT_EQ(parse_b3_single("0").sampling, Sampling::drop);
  EXPECT_FALSE(parse_b3_single("0").has_context());
  EXPECT_EQ(parse_b3_single("1").sampling, Sampling::sample);
  EXPECT_TRUE(parse_b3_single("d").debug);

  for (auto bad : {"x", "64fe8b2a57d3eff7", "64fe8b2a57d3eff7-e457b5a2e4d86bd",
                   "64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
                   "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3", "a-b-c-d-e", ""}) {
    B3 b = parse_b3_single(bad);
    EXPECT_FALSE(b.has_context()) << bad;
    EXPECT_NE(b.malformed, "") << bad;
  }
}

TEST(B3, TheSingleHeaderWinsOverTheMultiHeaders) {
  B3 b = extract({{"x-b3-traceid", "463ac35c9f6413ad"},
                  {"x-b3-spanid", "a2fb4a1d1a96d312"},
                  {"x-b3-sampled", "1"},
                  {"b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-0"}});
  ASSERT_TRUE(b.has_context());
  EXPECT_EQ(b.trace_id->hex(), "64fe8b2a57d3eff7");
  EXPECT_EQ(b.sampling, Sampling::drop);
  // A malformed single header falls back to the multi headers.
  B3 f = extract({{"b3", "garbage-here"},
                  {"x-b3-traceid", "463ac35c9f6413ad"},
                  {"x-b3-spanid", "a2fb4a1d1a96d312"}});
  ASSERT_TRUE(f.has_context());
  EXPECT_EQ(f.trace_id->hex(), "463ac35c9f6413ad");
}

TEST(B3, IdsRoundTrip) {
  EXPECT_EQ(hex64(0x1ull), "0000000000000001");
  EXPECT_EQ(parse_span_id("0000000000000001"), 1u);
  EXPECT_EQ(parse_span_id("00000000000000001"), std::nullopt);
  for (int i = 0; i < 100; ++i) {
    uint64_t id = random_id();
    EXPECT_NE(id, 0u);
    EXPECT_EQ(parse_span_id(hex64(id)), id);
    TraceId t = random_trace_id(i % 2 == 0);
    EXPECT_EQ(parse_trace_id(t.hex()), t);
  }
}

}  // namespace
}  // namespace sm::tracing
