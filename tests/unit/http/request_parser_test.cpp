// The request-head spec: what is accepted, what each rejection answers, and that feeding
// a head in pieces (from a moving buffer) means exactly what feeding it whole means.
#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "feed.h"

namespace sm::http {
namespace {

using test::describe;
using namespace std::string_view_literals;

ParseResult parse_whole(RequestParser& p, std::string_view msg) {
  p.reset();
  return p.parse(msg);
}

TEST(RequestParser, ParsesAnOriginFormGetWithoutCopying) {
  const std::string msg =
      "GET /reviews/0?x=1 HTTP/1.1\r\n"
      "Host: reviews:9080\r\n"
      "User-Agent:  curl/7.88  \r\n"
      "X-Empty:\r\n"
      "\r\n";
  RequestParser p;
  const ParseResult r = p.parse(msg);
  ASSERT_TRUE(r.complete()) << describe(r);
  EXPECT_EQ(r.consumed, msg.size());
  const RequestHead& h = p.head();
  EXPECT_EQ(h.method_text, "GET");
  EXPECT_EQ(h.method, Method::get);
  EXPECT_EQ(h.target, "/reviews/0?x=1");
  EXPECT_EQ(h.target_form, TargetForm::origin);
  EXPECT_EQ(h.version, "HTTP/1.1");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.authority, "reviews:9080");
  EXPECT_EQ(h.body.kind, BodyKind::none);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  ASSERT_EQ(h.headers.size(), 3u);
  EXPECT_EQ(h.headers[1].name, "User-Agent");
  EXPECT_EQ(h.headers[1].value, "curl/7.88");  // OWS trimmed
  EXPECT_EQ(h.headers[2].value, "");
  // Views point into the caller's buffer.
  EXPECT_GE(h.target.data(), msg.data());
  EXPECT_LT(h.headers[1].value.data(), msg.data() + msg.size());
  EXPECT_EQ(h.headers.value("user-agent"), "curl/7.88");
}

TEST(RequestParser, NeedsMoreUntilTheEmptyLine) {
  const std::string msg = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser p;
  for (size_t n = 0; n < msg.size(); ++n) {
    EXPECT_TRUE(p.parse(std::string_view(msg).substr(0, n)).need_more()) << n;
  }
  EXPECT_TRUE(p.parse(msg).complete());
  EXPECT_TRUE(p.parse(msg).complete());  // sticky until reset()
}

TEST(RequestParser, BodyFraming) {
  RequestParser p;
  ASSERT_TRUE(
      parse_whole(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n").complete());
  EXPECT_EQ(p.head().body, (BodyFraming{BodyKind::length, 12}));
  ASSERT_TRUE(parse_whole(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").complete());
  EXPECT_EQ(p.head().body.kind, BodyKind::none);
  ASSERT_TRUE(parse_whole(p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")
                  .complete());
  EXPECT_EQ(p.head().body.kind, BodyKind::chunked);
  // RFC 9110 8.6: identical values, in one line or several, are one length.
  ASSERT_TRUE(parse_whole(p,
                          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n"
                          "Content-Length: 5\r\n\r\n")
                  .complete());
  EXPECT_EQ(p.head().body, (BodyFraming{BodyKind::length, 5}));
  ASSERT_TRUE(parse_whole(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").complete());
  EXPECT_EQ(p.head().body.kind, BodyKind::none);  // no CL, no TE: no body on a request
}

TEST(RequestParser, KeepAliveByVersionAndConnectionOptions) {
  struct Case {
    const char* msg;
    bool keep_alive;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  RequestParser p;
  for (const Case& c : cases) {
    ASSERT_TRUE(parse_whole(p, c.msg).complete()) << c.msg;
    EXPECT_EQ(p.head().keep_alive, c.keep_alive) << c.msg;
  }
}

TEST(RequestParser, AuthorityFromHostOrTarget) {
  RequestParser p;
  ASSERT_TRUE(parse_whole(p, "GET http://details:9080/details/0 HTTP/1.1\r\nHost: other\r\n\r\n")
                  .complete());
  EXPECT_EQ(p.head().target_form, TargetForm::absolute);
  EXPECT_EQ(p.head().authority, "details:9080");  // the target wins, as in Envoy
  ASSERT_TRUE(
      parse_whole(p, "GET HTTPS://a.example?q HTTP/1.1\r\nHost: a.example\r\n\r\n").complete());
  EXPECT_EQ(p.head().authority, "a.example");
  ASSERT_TRUE(
      parse_whole(p, "CONNECT ratings:9080 HTTP/1.1\r\nHost: ratings:9080\r\n\r\n").complete());
  EXPECT_EQ(p.head().target_form, TargetForm::authority);
  EXPECT_EQ(p.head().authority, "ratings:9080");
  EXPECT_TRUE(p.head().is_connect());
  ASSERT_TRUE(parse_whole(p, "OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").complete());
  EXPECT_EQ(p.head().target_form, TargetForm::asterisk);
  EXPECT_EQ(p.head().authority, "[::1]:8080");
  ASSERT_TRUE(parse_whole(p, "GET / HTTP/1.0\r\n\r\n").complete());
  EXPECT_EQ(p.head().authority, "");  // HTTP/1.0 may omit Host
  ASSERT_TRUE(parse_whole(p, "GET / HTTP/1.1\r\nHost:\r\n\r\n").complete());
  EXPECT_EQ(p.head().authority, "");  // RFC 9112 3.2: an empty Host is allowed
}

TEST(RequestParser, ExpectAndUpgrade) {
  RequestParser p;
  ASSERT_TRUE(parse_whole(p,
                          "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                          "Content-Length: 3\r\n\r\n")
                  .complete());
  EXPECT_TRUE(p.head().expect_continue);
  ASSERT_TRUE(parse_whole(p, "PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").complete());
  EXPECT_FALSE(p.head().expect_continue);  // RFC 9110 10.1.1: ignored on HTTP/1.0

  ASSERT_TRUE(parse_whole(p,
                          "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                          "Upgrade: websocket\r\n\r\n")
                  .complete());
  EXPECT_TRUE(p.head().upgrade);
  EXPECT_EQ(p.head().headers.value("upgrade"), "websocket");
  ASSERT_TRUE(
      parse_whole(p, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").complete());
  EXPECT_FALSE(p.head().upgrade);  // not listed in Connection: ignored (RFC 9110 7.8)
  ASSERT_TRUE(
      parse_whole(p, "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
          .complete());
  EXPECT_FALSE(p.head().upgrade);
}

TEST(RequestParser, AcceptsWhatTheRfcAllows) {
  const char* ok[] = {
      "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  // empty lines before the request line
      "PURGE /cache HTTP/1.1\r\nHost: a\r\n\r\n",   // extension method
      "get / HTTP/1.1\r\nHost: a\r\n\r\n",          // methods are case-sensitive: another method
      "GET /\xc3\xa9t\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",   // raw UTF-8 in the path
      "GET /{x}|\"y\" HTTP/1.1\r\nHost: a\r\n\r\n",           // unsafe but visible ASCII
      "GET / HTTP/1.1\r\nHost: a\r\nX:\tv\t1\t\r\n\r\n",      // HTAB inside and around a value
      "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",  // obs-text in a value
      "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n",  // every tchar class
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: ,, close,\r\n\r\n",   // empty list elements
  };
  RequestParser p;
  for (const char* msg : ok) EXPECT_TRUE(parse_whole(p, msg).complete()) << msg;
  ASSERT_TRUE(parse_whole(p, ok[0]).complete());
  EXPECT_EQ(p.head().head_size, std::string_view(ok[0]).size());
  ASSERT_TRUE(parse_whole(p, ok[2]).complete());
  EXPECT_EQ(p.head().method, Method::other);
  ASSERT_TRUE(parse_whole(p, ok[5]).complete());
  EXPECT_EQ(p.head().headers[1].value, "v\t1");
}

// Each rejection rule with the status the proxy answers.
struct Reject {
  const char* name;
  std::string_view msg;
  uint16_t status;
};
// Names the case in test output instead of dumping its bytes.
void PrintTo(const Reject& c, std::ostream* os) {
  *os << c.name;
}

class RequestRejects : public ::testing::TestWithParam<Reject> {};

TEST_P(RequestRejects, WithItsStatus) {
  RequestParser p;
  const ParseResult r = p.parse(GetParam().msg);
  ASSERT_TRUE(r.failed()) << describe(r) << (r.complete() ? " " + describe(p.head()) : "");
  EXPECT_EQ(r.error.status, GetParam().status) << r.error.reason;
  EXPECT_FALSE(r.error.reason.empty());
}

constexpr Reject kRejects[] = {
    // request line
    {"NoVersion", "GET /\r\nHost: a\r\n\r\n", 400},
    {"DoubleSpace", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TrailingSpace", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"LeadingSpace", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TabSeparator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"LowercaseVersion", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"LongVersion", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
    {"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CtlInTarget", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"FragmentInTarget", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"BadMethodChar", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"Http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"Http09", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    {"Http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
    {"TlsClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
    {"BareLfRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"BareCrRequestLine", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
    // targets
    {"AsteriskNotOptions", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"ConnectOriginForm", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"ConnectNoPort", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"ConnectWithBody", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", 400},
    {"AuthorityFormNotConnect", "GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteNoAuthority", "GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteEmptyAuthority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteOtherScheme", "GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteUserinfo", "GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // Host
    {"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
    {"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
    {"HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"HostWithUserinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
    {"HostWithPath", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    // field syntax
    {"ObsFold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
    {"SpaceBeforeFirstField", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    {"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"TabBeforeColon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
    {"EmptyName", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400},
    {"NoColon", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo\r\n\r\n", 400},
    {"BadNameChar", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", 400},
    {"NonAsciiName", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", 400},
    {"BareCrInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
    {"NulInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"sv, 400},
    {"CtlInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", 400},
    {"DelInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400},
    {"BareLfField", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
    {"BareLfEnd", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    // Content-Length
    {"ClNegative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
    {"ClPlus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
    {"ClHex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
    {"ClEmpty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
    {"ClEmptyElement", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400},
    {"ClInnerSpace", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", 400},
    {"ClOverflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
     400},
    {"ClDiffering", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     400},
    {"ClDifferingList", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400},
    // Transfer-Encoding
    {"TeAndCl",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"ClAndTe",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
    {"TeChunkedNotLast", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     400},
    {"TeChunkedNotLastTwoLines",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: gzip\r\n\r\n",
     400},
    {"TeChunkedTwice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
     400},
    {"TeChunkedParam", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
    {"TeEmptyElement", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400},
    {"TeEmpty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
    {"TeBadToken", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400},
    {"TeInHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    // RFC 9112 6.3: chunked must be final on a request, else 400; an unknown coding under
    // a final chunked is 501 (RFC 9112 6.1).
    {"TeGzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
    {"TeGzipChunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501},
};

INSTANTIATE_TEST_SUITE_P(All, RequestRejects, ::testing::ValuesIn(kRejects),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(RequestParser, RequestLineLimitIs414) {
  Limits limits;
  limits.max_start_line = 32;
  RequestParser p(limits);
  const std::string at_limit = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(at_limit.size(), 32u);
  EXPECT_TRUE(p.parse(at_limit + "\r\nHost: a\r\n\r\n").complete());
  p.reset();
  const ParseResult r =
      p.parse("GET /" + std::string(32 - 13, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error.status, 414);
  // Before its end arrives: the proxy need not wait for the rest of an over-long line.
  p.reset();
  EXPECT_TRUE(p.parse("GET /" + std::string(27, 'a')).need_more());
  EXPECT_EQ(p.parse("GET /" + std::string(28, 'a')).error.status, 414);
}

TEST(RequestParser, HeadLimitsAre431) {
  Limits limits;
  limits.max_head_bytes = 64;
  limits.max_headers = 3;
  RequestParser p(limits);
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\n";  // 25 bytes
  const std::string fill = "X: " + std::string(64 - 25 - 2 - 5, 'v') + "\r\n";
  EXPECT_EQ((start + fill + "\r\n").size(), 64u);
  EXPECT_TRUE(p.parse(start + fill + "\r\n").complete());
  p.reset();
  const std::string over = "X: " + std::string(64 - 25 - 2 - 4, 'v') + "\r\n";
  EXPECT_EQ(p.parse(start + over + "\r\n").error.status, 431);
  p.reset();
  EXPECT_EQ(p.parse(start + std::string(40, 'v')).error.status, 431);  // no end in sight
  p.reset();
  EXPECT_EQ(p.parse(std::string(70, '\r') + "\n").error.status, 400);  // bare CR, not 431

  p.reset();
  EXPECT_TRUE(p.parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n").complete());
  p.reset();
  const ParseResult r = p.parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
  EXPECT_EQ(r.error.status, 431);
  EXPECT_EQ(r.error.reason, "too many header fields");
}

// Found by the fuzzer: a bad byte past the head limit decided the error when the head came
// whole (400) but not when it came byte by byte (431). Bytes past the limit are never read.
TEST(RequestParser, BytesPastTheHeadLimitNeverDecide) {
  Limits limits;
  limits.max_head_bytes = 32;
  std::string msg;
  for (int i = 0; i < 14; ++i) msg += "\r\n";  // 28 bytes of empty lines, skipped
  msg += "Transfer-Encoding: \r\n\r\n";        // ':' at byte 45, past the limit
  RequestParser whole(limits), pieces(limits);
  const ParseResult a = whole.parse(msg);
  std::unique_ptr<char[]> storage;
  const ParseResult b = test::feed_bytewise(pieces, msg, storage);
  EXPECT_EQ(describe(a), "error 431 header section too large");
  EXPECT_EQ(describe(b), describe(a));
  // Within the limit the same byte is the error, either way.
  limits.max_head_bytes = 64;
  RequestParser whole64(limits), pieces64(limits);
  EXPECT_EQ(describe(whole64.parse(msg)), "error 400 invalid character in method");
  EXPECT_EQ(describe(test::feed_bytewise(pieces64, msg, storage)),
            "error 400 invalid character in method");
}

TEST(RequestParser, EnvoyDefaultLimits) {
  const Limits limits;
  EXPECT_EQ(limits.max_head_bytes, 60u * 1024);
  EXPECT_EQ(limits.max_headers, 100u);
  RequestParser p;
  std::string msg = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 99; ++i) msg += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_TRUE(p.parse(msg + "\r\n").complete());
  p.reset();
  EXPECT_EQ(p.parse(msg + "X: 1\r\n\r\n").error.status, 431);
}

TEST(RequestParser, RejectsNonHttpAtTheFirstBadByte) {
  RequestParser p;
  const ParseResult r = p.parse("\x16");
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error.status, 400);
  p.reset();
  EXPECT_TRUE(p.parse("PRI").need_more());
  EXPECT_TRUE(p.parse("PRI * HTTP/2.0\r\n").failed());  // the HTTP/2 preface: 505
}

// Every accepted and rejected message above means the same when it arrives one byte per
// recv, each time at another address.
TEST(RequestParser, ByteByByteEqualsWhole) {
  std::vector<std::string> msgs;
  for (const Reject& r : kRejects) msgs.emplace_back(r.msg);
  msgs.emplace_back(
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  msgs.emplace_back(
      "GET http://h:1/p HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
  msgs.emplace_back("\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  for (const std::string& msg : msgs) {
    RequestParser whole, pieces;
    const ParseResult a = whole.parse(msg);
    std::unique_ptr<char[]> storage;
    const ParseResult b = test::feed_bytewise(pieces, msg, storage);
    ASSERT_EQ(describe(a), describe(b)) << msg;
    if (a.complete()) {
      EXPECT_EQ(describe(whole.head()), describe(pieces.head())) << msg;
    }
  }
}

TEST(RequestParser, PipelinedRequestsInOneBuffer) {
  const std::string buf =
      "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
      "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
  RequestParser p;
  BodyFramer framer;
  ParseResult r = p.parse(buf);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(p.head().target, "/a");
  framer.reset(p.head().body);
  const ParseResult body = framer.feed(std::string_view(buf).substr(r.consumed));
  ASSERT_TRUE(body.complete());
  EXPECT_EQ(body.consumed, 3u);
  const size_t next = r.consumed + body.consumed;
  p.reset();
  r = p.parse(std::string_view(buf).substr(next));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(p.head().target, "/b");
  EXPECT_EQ(p.head().authority, "b");
  EXPECT_EQ(next + r.consumed, buf.size());
}

// The proxy's loop: recvs of a few bytes append to a connection buffer that is compacted
// (and so moves) after every message and every forwarded body piece.
TEST(RequestParser, EventLoopForwardsEachBodyExactly) {
  const std::string body_a = "hello";
  const std::string body_b = "4;x=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\n";
  const std::string stream = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n" + body_a +
                             "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                             body_b + "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t recv_size : {1, 3, 7, 64, 4096}) {
    RequestParser parser;
    BodyFramer framer;
    std::string buf, targets, forwarded;
    bool in_body = false;
    for (size_t off = 0; off < stream.size(); off += recv_size) {
      buf += stream.substr(off, recv_size);
      for (;;) {
        if (!in_body) {
          const ParseResult r = parser.parse(buf);
          ASSERT_FALSE(r.failed()) << describe(r);
          if (r.need_more()) break;
          targets += std::string(parser.head().target) + " ";
          framer.reset(parser.head().body);
          buf.erase(0, r.consumed);  // the head was forwarded (write_head); drop it
          in_body = true;
        }
        const ParseResult b = framer.feed(buf);
        ASSERT_FALSE(b.failed()) << describe(b);
        forwarded += buf.substr(0, b.consumed);
        buf.erase(0, b.consumed);
        if (b.need_more()) break;
        in_body = false;
        parser.reset();
      }
    }
    EXPECT_EQ(targets, "/a /b /c ") << recv_size;
    EXPECT_EQ(forwarded, body_a + body_b) << recv_size;
    EXPECT_TRUE(buf.empty());
  }
}

}  // namespace
}  // namespace sm::http
