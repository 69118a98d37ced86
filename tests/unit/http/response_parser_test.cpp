// The response-head spec: status line, framing by request method and status (RFC 9112
// 6.3), keep-alive, and 502 for anything the proxy cannot forward safely.
#include "http/response_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "feed.h"

namespace sm::http {
namespace {

using test::describe;

struct Framing {
  const char* name;
  Method request;
  const char* msg;
  BodyFraming body;
  bool keep_alive;
};
// Names the case in test output instead of dumping its bytes.
void PrintTo(const Framing& c, std::ostream* os) {
  *os << c.name;
}

class ResponseFraming : public ::testing::TestWithParam<Framing> {};

TEST_P(ResponseFraming, FollowsRfc9112Section6_3) {
  const Framing& c = GetParam();
  ResponseParser p;
  p.reset(c.request);
  const ParseResult r = p.parse(c.msg);
  ASSERT_TRUE(r.complete()) << describe(r);
  EXPECT_EQ(r.consumed, std::string_view(c.msg).size());
  EXPECT_EQ(p.head().body, c.body) << describe(p.head());
  EXPECT_EQ(p.head().keep_alive, c.keep_alive);

  ResponseParser bytewise;
  bytewise.reset(c.request);
  std::unique_ptr<char[]> storage;
  EXPECT_EQ(describe(test::feed_bytewise(bytewise, c.msg, storage)), describe(r));
  EXPECT_EQ(describe(bytewise.head()), describe(p.head()));
}

constexpr BodyFraming kNone{BodyKind::none, 0};
constexpr BodyFraming kChunked{BodyKind::chunked, 0};
constexpr BodyFraming kClose{BodyKind::until_close, 0};
constexpr BodyFraming kTunnel{BodyKind::tunnel, 0};

constexpr Framing kFramings[] = {
    {"ContentLength",
     Method::get,
     "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
     {BodyKind::length, 42},
     true},
    {"ContentLengthZero", Method::get, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kNone, true},
    {"Chunked", Method::post, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
     kChunked, true},
    {"GzipChunked", Method::get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     kChunked, true},
    {"TeNotChunkedReadsToClose", Method::get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     kClose, false},
    {"NoLengthReadsToClose", Method::get, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", kClose, false},
    {"HeadHasNoBody", Method::head, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", kNone, true},
    {"HeadChunkedHasNoBody", Method::head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     kNone, true},
    {"NoContent", Method::delete_, "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", kNone,
     true},
    {"NotModified", Method::get, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
     kNone, true},
    {"Continue", Method::put, "HTTP/1.1 100 Continue\r\n\r\n", kNone, true},
    {"EarlyHints", Method::get, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", kNone, true},
    {"SwitchingProtocols", Method::get,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     kTunnel, false},
    {"ConnectEstablished", Method::connect, "HTTP/1.1 200 OK\r\n\r\n", kTunnel, false},
    {"ConnectRefused",
     Method::connect,
     "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n",
     {BodyKind::length, 3},
     true},
    {"Close",
     Method::get,
     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     false},
    {"Http10",
     Method::get,
     "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     false},
    {"Http10KeepAlive",
     Method::get,
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     true},
    {"NoReasonPhrase",
     Method::get,
     "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     true},
    {"EmptyReasonPhrase",
     Method::get,
     "HTTP/1.1 404 \r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     true},
    {"LeadingEmptyLine",
     Method::get,
     "\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
     {BodyKind::length, 1},
     true},
};

INSTANTIATE_TEST_SUITE_P(All, ResponseFraming, ::testing::ValuesIn(kFramings),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(ResponseParser, ExposesStatusLineAndFields) {
  const std::string msg =
      "HTTP/1.1 503 Service Unavailable\r\nServer: envoy\r\nContent-Length: 0\r\n\r\n";
  ResponseParser p;
  ASSERT_TRUE(p.parse(msg).complete());
  EXPECT_EQ(p.head().version, "HTTP/1.1");
  EXPECT_EQ(p.head().status, 503);
  EXPECT_EQ(p.head().reason, "Service Unavailable");
  EXPECT_EQ(p.head().headers.value("SERVER"), "envoy");
  EXPECT_FALSE(p.head().interim());
  p.reset(Method::put);
  ASSERT_TRUE(p.parse("HTTP/1.1 100 Continue\r\n\r\n").complete());
  EXPECT_TRUE(p.head().interim());
}

TEST(ResponseParser, RejectsWith502) {
  const char* bad[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : 1\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
      "SSH-2.0-OpenSSH_9.2\r\n",
  };
  for (const char* msg : bad) {
    ResponseParser p;
    const ParseResult r = p.parse(msg);
    ASSERT_TRUE(r.failed()) << msg << " -> " << describe(r);
    EXPECT_EQ(r.error.status, 502) << msg;
    ResponseParser bytewise;
    std::unique_ptr<char[]> storage;
    EXPECT_EQ(describe(test::feed_bytewise(bytewise, msg, storage)), describe(r)) << msg;
  }
}

TEST(ResponseParser, LimitsAre502) {
  Limits limits;
  limits.max_head_bytes = 40;
  ResponseParser p(limits);
  const ParseResult r = p.parse("HTTP/1.1 200 OK\r\nX: " + std::string(40, 'a'));
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error.status, 502);
  EXPECT_EQ(r.error.reason, "header section too large");
}

TEST(ResponseParser, InterimThenFinalOnOneConnection) {
  const std::string buf =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n";
  ResponseParser p;
  p.reset(Method::post);
  ParseResult r = p.parse(buf);
  ASSERT_TRUE(r.complete());
  ASSERT_TRUE(p.head().interim());
  size_t off = r.consumed;
  p.reset(Method::post);
  r = p.parse(std::string_view(buf).substr(off));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(p.head().status, 200);
  off += r.consumed;
  BodyFramer framer;
  framer.reset(p.head().body);
  const ParseResult body = framer.feed(std::string_view(buf).substr(off));
  ASSERT_TRUE(body.complete());
  EXPECT_EQ(off + body.consumed, buf.size());
}

}  // namespace
}  // namespace sm::http
