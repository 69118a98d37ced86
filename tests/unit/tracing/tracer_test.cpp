// The tracer's per-request decisions: ids, parents, sampling, the headers it propagates and
// the span it reports.
#include "tracing/tracer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <vector>

namespace sm::tracing {
namespace {

struct Recorder : SpanSink {
  void report(Span&& s) override { spans.push_back(std::move(s)); }
  std::vector<Span> spans;
};

std::map<std::string, std::string> upstream(const SpanContext& ctx) {
  std::map<std::string, std::string> m;
  for (const auto& h : ctx.upstream_headers()) m[std::string(h.name)] = std::string(h.value);
  return m;
}

std::map<std::string, std::string> tags(const Span& s) {
  return {s.tags.begin(), s.tags.end()};
}

TracerConfig config(double percent = 100) {
  TracerConfig c;
  c.service_name = "productpage-v1";
  c.node_id = "sidecar~198.18.0.10~productpage-v1~sm";
  c.local_ip = "198.18.0.10";
  c.sampling_percent = percent;
  return c;
}

BeginInfo outbound(std::string_view request_id = "") {
  BeginInfo b;
  b.kind = SpanKind::client;
  b.request_id = request_id;
  b.method = "GET";
  b.authority = "reviews.service.consul:9080";
  b.path = "/reviews/0";
  return b;
}

TEST(Tracer, ARequestWithoutContextStartsATrace) {
  Recorder rec;
  Tracer t(config(), &rec);
  std::vector<http::Header> none;
  SpanContext ctx = t.begin(http::HeaderList(none), outbound());
  EXPECT_TRUE(ctx.sampled());
  EXPECT_EQ(ctx.parent_id(), 0u);
  auto h = upstream(ctx);
  EXPECT_EQ(h["x-b3-traceid"], ctx.trace_id().hex());
  EXPECT_EQ(h["x-b3-traceid"].size(), 16u);  // 64-bit trace ids, as Envoy's default
  EXPECT_EQ(h["x-b3-spanid"], hex64(ctx.span_id()));
  EXPECT_EQ(h.count("x-b3-parentspanid"), 0u);
  EXPECT_EQ(h["x-b3-sampled"], "1");
  EXPECT_EQ(h.count("x-b3-flags"), 0u);
  // No x-request-id came: one is made (a version 4 UUID) and propagated.
  EXPECT_TRUE(std::regex_match(
      h["x-request-id"],
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << h["x-request-id"];
  EXPECT_EQ(ctx.request_id(), h["x-request-id"]);
  t.finish(ctx, {.status = 200,
                 .response_flags = "-",
                 .upstream_cluster = "outbound|9080|v2|reviews.service.consul",
                 .upstream_ip = "198.18.0.13",
                 .upstream_port = 9080,
                 .response_size = 379});
  ASSERT_EQ(rec.spans.size(), 1u);
  const Span& s = rec.spans[0];
  EXPECT_EQ(s.trace_id, ctx.trace_id());
  EXPECT_EQ(s.id, ctx.span_id());
  EXPECT_EQ(s.kind, SpanKind::client);
  EXPECT_EQ(s.name, "reviews.service.consul:9080/*");
  EXPECT_EQ(s.local.service_name, "productpage-v1");
  EXPECT_EQ(s.remote.ip, "198.18.0.13");
  EXPECT_EQ(s.remote.port, 9080);
  EXPECT_GE(s.duration_us, 0);
  EXPECT_GT(s.timestamp_us, 1'700'000'000'000'000);  // epoch microseconds
  auto tg = tags(s);
  EXPECT_EQ(tg["http.method"], "GET");
  EXPECT_EQ(tg["http.url"], "http://reviews.service.consul:9080/reviews/0");
  EXPECT_EQ(tg["http.status_code"], "200");
  EXPECT_EQ(tg["response_flags"], "-");
  EXPECT_EQ(tg["upstream_cluster"], "outbound|9080|v2|reviews.service.consul");
  EXPECT_EQ(tg["node_id"], "sidecar~198.18.0.10~productpage-v1~sm");
  EXPECT_EQ(tg["guid:x-request-id"], ctx.request_id());
  EXPECT_EQ(tg["response_size"], "379");
  EXPECT_EQ(tg.count("error"), 0u);
  t.finish(ctx, {.status = 200});  // a second finish reports nothing
  EXPECT_EQ(rec.spans.size(), 1u);
}

TEST(Tracer, AnExistingRequestIdIsKeptAndNotReAdded) {
  Tracer t(config(), nullptr);
  std::vector<http::Header> none;
  SpanContext ctx = t.begin(http::HeaderList(none), outbound("abc-123"));
  EXPECT_EQ(ctx.request_id(), "abc-123");
  EXPECT_EQ(upstream(ctx).count("x-request-id"), 0u);
}

TEST(Tracer, AClientSpanIsAChildOfTheIncomingSpan) {
  Recorder rec;
  Tracer t(config(0), &rec);  // sampling 0%: the incoming decision still wins
  std::vector<http::Header> in = {{"x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"},
                                  {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                  {"x-b3-parentspanid", "0020000000000001"},
                                  {"x-b3-sampled", "1"}};
  SpanContext ctx = t.begin(http::HeaderList(in), outbound("rid"));
  EXPECT_EQ(ctx.trace_id().hex(), "463ac35c9f6413ad48485a3953bb6124");
  EXPECT_EQ(ctx.parent_id(), 0xa2fb4a1d1a96d312ull);
  EXPECT_NE(ctx.span_id(), 0xa2fb4a1d1a96d312ull);
  auto h = upstream(ctx);
  EXPECT_EQ(h["x-b3-parentspanid"], "a2fb4a1d1a96d312");
  EXPECT_EQ(h["x-b3-spanid"], hex64(ctx.span_id()));
  EXPECT_EQ(h["x-b3-sampled"], "1");
  t.finish(ctx, {.status = 503, .response_flags = "UO"});
  ASSERT_EQ(rec.spans.size(), 1u);
  EXPECT_FALSE(rec.spans[0].shared);
  EXPECT_EQ(tags(rec.spans[0])["error"], "true");
  EXPECT_EQ(tags(rec.spans[0])["response_flags"], "UO");
}

TEST(Tracer, AServerSpanSharesTheCallersSpanAsEnvoysDefault) {
  Recorder rec;
  Tracer t(config(), &rec);
  std::vector<http::Header> in = {{"b3", "463ac35c9f6413ad-a2fb4a1d1a96d312-1-0020000000000001"}};
  BeginInfo b = outbound("rid");
  b.kind = SpanKind::server;
  b.peer_ip = "198.18.0.10";
  b.peer_port = 41234;
  SpanContext ctx = t.begin(http::HeaderList(in), b);
  EXPECT_EQ(ctx.span_id(), 0xa2fb4a1d1a96d312ull);
  EXPECT_EQ(ctx.parent_id(), 0x0020000000000001ull);
  t.finish(ctx, {.status = 200});
  ASSERT_EQ(rec.spans.size(), 1u);
  EXPECT_TRUE(rec.spans[0].shared);
  EXPECT_EQ(rec.spans[0].kind, SpanKind::server);
  EXPECT_EQ(rec.spans[0].remote.ip, "198.18.0.10");
  // The single header is dropped from the forwarded request; x-b3-* replace it.
  auto removed = SpanContext::removed_headers();
  EXPECT_EQ(std::vector<std::string_view>(removed.begin(), removed.end()),
            std::vector<std::string_view>{"b3"});

  TracerConfig c = config();
  c.shared_span_context = false;
  Tracer own(c, &rec);
  SpanContext o = own.begin(http::HeaderList(in), b);
  EXPECT_EQ(o.parent_id(), 0xa2fb4a1d1a96d312ull);
  EXPECT_NE(o.span_id(), 0xa2fb4a1d1a96d312ull);
}

TEST(Tracer, NotSampledIsPropagatedAndNothingIsReported) {
  Recorder rec;
  Tracer t(config(100), &rec);
  std::vector<http::Header> in = {{"x-b3-traceid", "463ac35c9f6413ad"},
                                  {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                  {"x-b3-sampled", "0"}};
  SpanContext ctx = t.begin(http::HeaderList(in), outbound("rid"));
  EXPECT_FALSE(ctx.sampled());
  EXPECT_EQ(ctx.request_id(), "");  // not copied for a request that is not traced
  EXPECT_EQ(upstream(ctx).count("x-request-id"), 0u);
  EXPECT_EQ(upstream(ctx)["x-b3-sampled"], "0");
  EXPECT_EQ(upstream(ctx)["x-b3-traceid"], "463ac35c9f6413ad");
  t.finish(ctx, {.status = 200});
  EXPECT_TRUE(rec.spans.empty());
}

TEST(Tracer, DebugFlagAlwaysSamplesAndPropagates) {
  Recorder rec;
  Tracer t(config(0), &rec);
  std::vector<http::Header> in = {{"x-b3-flags", "1"}};
  SpanContext ctx = t.begin(http::HeaderList(in), outbound("rid"));
  EXPECT_TRUE(ctx.sampled());
  EXPECT_EQ(upstream(ctx)["x-b3-flags"], "1");
  t.finish(ctx, {.status = 200});
  ASSERT_EQ(rec.spans.size(), 1u);
  EXPECT_TRUE(rec.spans[0].debug);
}

TEST(Tracer, SamplingPercentageWithoutADecision) {
  std::vector<http::Header> none;
  for (double percent : {0.0, 1.0, 25.0, 100.0}) {
    Tracer t(config(percent), nullptr);
    int sampled = 0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) sampled += t.begin(http::HeaderList(none), outbound()).sampled();
    const double expect = n * percent / 100;
    // Binomial: 5 standard deviations, plus one request of slack for 0% and 100%.
    const double tol = 5 * std::sqrt(n * (percent / 100) * (1 - percent / 100)) + 1;
    EXPECT_NEAR(sampled, expect, tol) << percent << "%";
  }
  // The decision follows x-request-id, so every hop of one request agrees.
  Tracer t(config(50), nullptr);
  for (int i = 0; i < 50; ++i) {
    std::string rid = random_request_id();
    EXPECT_EQ(t.begin(http::HeaderList(none), outbound(rid)).sampled(),
              t.sample_by_request_id(rid));
    EXPECT_EQ(t.sample_by_request_id(rid), t.sample_by_request_id(rid));
  }
}

TEST(Tracer, HeaderViewsSurviveAMove) {
  Tracer t(config(), nullptr);
  std::vector<http::Header> none;
  SpanContext a = t.begin(http::HeaderList(none), outbound());
  auto before = upstream(a);
  std::vector<SpanContext> moved;
  moved.push_back(std::move(a));
  moved.emplace_back();  // reallocation moves the first again
  EXPECT_EQ(upstream(moved[0]), before);
  EXPECT_TRUE(moved[1].upstream_headers().empty());
}

TEST(Tracer, WideTraceIdsWhenConfigured) {
  TracerConfig c = config();
  c.trace_id_128bit = true;
  Tracer t(c, nullptr);
  std::vector<http::Header> none;
  EXPECT_EQ(upstream(t.begin(http::HeaderList(none), outbound()))["x-b3-traceid"].size(), 32u);
}

}  // namespace
}  // namespace sm::tracing
