// Zipkin v2 JSON: what the sidecar POSTs validates against Zipkin's published API
// (fixtures/zipkin2-api.yaml, body of POST /spans), and the validator itself refuses
// what the API refuses (so these tests can fail).
#include "tracing/zipkin_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "schema_validator.h"
#include "tracing/tracer.h"

namespace sm::tracing {
namespace {

using nlohmann::json;

const test::SchemaValidator& api() {
  static const test::SchemaValidator v(SM_ZIPKIN_API);
  return v;
}

std::string errors_of(const json& body, bool strict = true) {
  std::string out;
  for (const auto& e : api().validate_body("/spans", "post", body, strict)) out += e + "\n";
  return out;
}

Span client_span() {
  Span s;
  s.trace_id = TraceId{0x463ac35c9f6413adull, 0x48485a3953bb6124ull, true};
  s.id = 0xa2fb4a1d1a96d312ull;
  s.parent_id = 0x0020000000000001ull;
  s.name = "reviews.service.consul:9080/*";
  s.kind = SpanKind::client;
  s.timestamp_us = 1764720000123456;
  s.duration_us = 2345;
  s.local = {"productpage-v1", "198.18.0.10", 0};
  s.remote = {"", "198.18.0.13", 9080};
  s.tags = {{"http.method", "GET"},
            {"http.url", "http://reviews.service.consul:9080/reviews/0?q=\"x\"\n\t\\"},
            {"http.status_code", "200"},
            {"user_agent", std::string("odd\x01\x1f\x7f bytes")}};
  return s;
}

TEST(ZipkinJson, AClientSpanMatchesTheApi) {
  Span s = client_span();
  const std::string text = encode_spans(std::span<const Span>(&s, 1));
  json body = json::parse(text);  // throws on invalid JSON
  EXPECT_EQ(errors_of(body), "") << text;
  const json& j = body.at(0);
  EXPECT_EQ(j["traceId"], "463ac35c9f6413ad48485a3953bb6124");
  EXPECT_EQ(j["id"], "a2fb4a1d1a96d312");
  EXPECT_EQ(j["parentId"], "0020000000000001");
  EXPECT_EQ(j["kind"], "CLIENT");
  EXPECT_EQ(j["timestamp"], 1764720000123456);
  EXPECT_EQ(j["duration"], 2345);
  EXPECT_EQ(j["localEndpoint"], json({{"serviceName", "productpage-v1"}, {"ipv4", "198.18.0.10"}}));
  EXPECT_EQ(j["remoteEndpoint"], json({{"ipv4", "198.18.0.13"}, {"port", 9080}}));
  EXPECT_EQ(j["tags"]["http.url"], "http://reviews.service.consul:9080/reviews/0?q=\"x\"\n\t\\");
  EXPECT_EQ(j["tags"]["user_agent"], std::string("odd\x01\x1f\x7f bytes"));
  EXPECT_FALSE(j.contains("shared"));
  EXPECT_FALSE(j.contains("debug"));
}

TEST(ZipkinJson, UnknownFieldsAreLeftOut) {
  Span s;
  s.trace_id = TraceId{0, 0x1ull, false};
  s.id = 0x2;
  s.kind = SpanKind::server;
  s.timestamp_us = 1;
  s.duration_us = 0;  // under a microsecond: rounded up to 1, as the API asks
  s.shared = true;
  s.debug = true;
  json j = json::parse(encode_spans(std::span<const Span>(&s, 1)));
  EXPECT_EQ(errors_of(j), "") << j.dump();
  EXPECT_EQ(j[0]["traceId"], "0000000000000001");
  EXPECT_FALSE(j[0].contains("parentId"));
  EXPECT_FALSE(j[0].contains("name"));
  EXPECT_FALSE(j[0].contains("localEndpoint"));
  EXPECT_FALSE(j[0].contains("remoteEndpoint"));
  EXPECT_FALSE(j[0].contains("tags"));
  EXPECT_EQ(j[0]["duration"], 1);
  EXPECT_EQ(j[0]["shared"], true);
  EXPECT_EQ(j[0]["debug"], true);
}

TEST(ZipkinJson, AddressesGoInTheirFamilysField) {
  Span s = client_span();
  s.local = {"x", "2001:2:0:0::10", 15001};
  s.remote = {"", "::ffff:198.18.0.13", 9080};  // v4-mapped: the ipv4 field, as Zipkin prefers
  json j = json::parse(encode_spans(std::span<const Span>(&s, 1)));
  EXPECT_EQ(errors_of(j), "") << j.dump();
  EXPECT_EQ(j[0]["localEndpoint"]["ipv6"], "2001:2::10");
  EXPECT_EQ(j[0]["localEndpoint"]["port"], 15001);
  EXPECT_EQ(j[0]["remoteEndpoint"]["ipv4"], "198.18.0.13");
  s.remote = {"", "not-an-ip", 0};  // text that is no address is left out
  j = json::parse(encode_spans(std::span<const Span>(&s, 1)));
  EXPECT_FALSE(j[0].contains("remoteEndpoint"));
}

TEST(ZipkinJson, TheTracersSpansMatchTheApi) {
  struct Keep : SpanSink {
    void report(Span&& s) override { spans.push_back(std::move(s)); }
    std::vector<Span> spans;
  } keep;
  TracerConfig c;
  c.service_name = "reviews-v2";
  c.node_id = "sidecar~198.18.0.13";
  c.sampling_percent = 100;
  Tracer t(c, &keep);
  std::vector<http::Header> in = {{"x-b3-traceid", "463ac35c9f6413ad"},
                                  {"x-b3-spanid", "a2fb4a1d1a96d312"}};
  for (SpanKind kind : {SpanKind::server, SpanKind::client}) {
    BeginInfo b;
    b.kind = kind;
    b.method = "GET";
    b.authority = "ratings.service.consul:9080";
    b.path = "/ratings/0";
    b.user_agent = "python-urllib3";
    b.peer_ip = "198.18.0.13";
    b.peer_port = 40000;
    SpanContext ctx = t.begin(http::HeaderList(in), b);
    t.finish(ctx, {.status = 0,
                   .response_flags = "UF",
                   .upstream_cluster = "outbound|9080|v1|ratings.service.consul",
                   .upstream_ip = "198.18.0.15",
                   .upstream_port = 9080});
  }
  ASSERT_EQ(keep.spans.size(), 2u);
  json j = json::parse(encode_spans(keep.spans));
  EXPECT_EQ(errors_of(j), "") << j.dump(1);
  EXPECT_EQ(j.size(), 2u);
}

TEST(ZipkinJson, TheValidatorRefusesWhatTheApiRefuses) {
  json good = json::parse(encode_spans(std::vector<Span>{client_span()}));
  ASSERT_EQ(errors_of(good), "");
  auto broken = [&](auto edit) {
    json j = good;
    edit(j[0]);
    return errors_of(j);
  };
  EXPECT_NE(broken([](json& s) { s["traceId"] = "463ac35c9f6413a"; }), "");     // 15 digits
  EXPECT_NE(broken([](json& s) { s["traceId"] = "463AC35C9F6413AD"; }), "");    // upper case
  EXPECT_NE(broken([](json& s) { s["id"] = "a2fb4a1d1a96d3120"; }), "");        // 17 digits
  EXPECT_NE(broken([](json& s) { s.erase("id"); }), "");                        // required
  EXPECT_NE(broken([](json& s) { s["kind"] = "client"; }), "");                 // enum
  EXPECT_NE(broken([](json& s) { s["timestamp"] = "1764720000123456"; }), "");  // integer
  EXPECT_NE(broken([](json& s) { s["remoteEndpoint"]["port"] = "9080"; }), "");
  EXPECT_NE(broken([](json& s) { s["remoteEndpoint"]["ipv4"] = "2001:2::1"; }), "");
  EXPECT_NE(broken([](json& s) { s["tags"]["http.status_code"] = 200; }), "");  // strings only
  EXPECT_NE(broken([](json& s) { s["shared"] = "true"; }), "");
  EXPECT_NE(broken([](json& s) { s["duration"] = 0; }), "");                        // minimum 1
  EXPECT_NE(broken([](json& s) { s["localendpoint"] = s["localEndpoint"]; }), "");  // strict
  EXPECT_NE(errors_of(good[0]), "");  // a span, not a list of spans
}

}  // namespace
}  // namespace sm::tracing
