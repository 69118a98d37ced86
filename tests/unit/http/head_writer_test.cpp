// The forwarding spec: a head is written back as received, with the proxy's edits (drop,
// overwrite, append, hop-by-hop removal) and the size contract for small buffers.
#include "http/head_writer.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "http/request_parser.h"
#include "http/response_parser.h"

namespace sm::http {
namespace {

template <class Head>
std::string write(const Head& head, const HeadEdits& edits) {
  std::string out(4096, '\0');
  const size_t n = write_head(head, edits, std::span<char>(out));
  EXPECT_LE(n, out.size());
  out.resize(n);
  return out;
}

const RequestHead& parse_request(RequestParser& p, std::string_view msg) {
  p.reset();
  EXPECT_TRUE(p.parse(msg).complete()) << msg;
  return p.head();
}

TEST(HeadWriter, WritesARequestBackAsReceived) {
  const std::string msg =
      "POST /ratings/0 HTTP/1.1\r\nHost: ratings:9080\r\nX-B3-TraceId: 80f198ee56343ba8\r\n"
      "Content-Length: 2\r\n\r\n";
  RequestParser p;
  EXPECT_EQ(write(parse_request(p, msg), {}), msg);
}

TEST(HeadWriter, NormalizesWhitespaceOnly) {
  RequestParser p;
  EXPECT_EQ(write(parse_request(p, "\r\nGET / HTTP/1.1\r\nHost:a\r\nX:\t v \t\r\n\r\n"), {}),
            "GET / HTTP/1.1\r\nHost: a\r\nX: v\r\n\r\n");
}

TEST(HeadWriter, AppliesProxyEdits) {
  RequestParser p;
  const RequestHead& head = parse_request(
      p,
      "GET http://reviews:9080/reviews/0 HTTP/1.1\r\nHost: reviews\r\nX-Drop-Me: 1\r\n"
      "x-forwarded-proto: https\r\nAccept: */*\r\nX-FORWARDED-PROTO: ftp\r\n\r\n");
  const std::array<std::string_view, 1> remove = {"x-drop-me"};
  const std::array<Header, 1> set = {Header{"x-forwarded-proto", "http"}};
  const std::array<Header, 1> add = {Header{"x-request-id", "9b2c0e36-55d1"}};
  HeadEdits edits;
  edits.remove = remove;
  edits.set = set;
  edits.add = add;
  edits.target = "/reviews/0";  // absolute-form to origin-form for an origin server
  EXPECT_EQ(write(head, edits),
            "GET /reviews/0 HTTP/1.1\r\nHost: reviews\r\nAccept: */*\r\n"
            "x-forwarded-proto: http\r\nx-request-id: 9b2c0e36-55d1\r\n\r\n");
}

TEST(HeadWriter, RemovesHopByHopFieldsButNeverFraming) {
  RequestParser p;
  const RequestHead& head = parse_request(
      p,
      "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Transfer-Encoding\r\n"
      "Connection: host\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
      "Proxy-Connection: close\r\nX-Secret: s\r\nX-Kept: k\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  HeadEdits edits;
  edits.remove_hop_by_hop = true;
  EXPECT_EQ(write(head, edits),
            "POST / HTTP/1.1\r\nHost: a\r\nX-Kept: k\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(HeadWriter, ManyConnectionLinesStillHonoured) {
  std::string msg = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 6; ++i) msg += "Connection: x-" + std::to_string(i) + "\r\n";
  msg += "X-5: gone\r\nX-6: kept\r\n\r\n";
  RequestParser p;
  HeadEdits edits;
  edits.remove_hop_by_hop = true;
  EXPECT_EQ(write(parse_request(p, msg), edits), "GET / HTTP/1.1\r\nHost: a\r\nX-6: kept\r\n\r\n");
}

TEST(HeadWriter, OverwritesServerOnResponses) {
  ResponseParser p;
  ASSERT_TRUE(p.parse("HTTP/1.1 200 OK\r\nserver: envoy\r\nContent-Length: 0\r\nServer: x\r\n\r\n")
                  .complete());
  const std::array<Header, 1> set = {Header{"server", "sockmesh"}};
  const std::array<Header, 1> add = {Header{"x-sockmesh-upstream-service-time", "7"}};
  HeadEdits edits;
  edits.set = set;
  edits.add = add;
  EXPECT_EQ(write(p.head(), edits),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nserver: sockmesh\r\n"
            "x-sockmesh-upstream-service-time: 7\r\n\r\n");
  p.reset();
  ASSERT_TRUE(p.parse("HTTP/1.0 404\r\n\r\n").complete());
  EXPECT_EQ(write(p.head(), {}), "HTTP/1.0 404 \r\n\r\n");
}

TEST(HeadWriter, ReportsTheSizeItNeeds) {
  RequestParser p;
  const std::string msg = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const RequestHead& head = parse_request(p, msg);
  std::array<char, 8> small{};
  EXPECT_EQ(write_head(head, {}, small), msg.size());
  std::string exact(msg.size(), '\0');
  EXPECT_EQ(write_head(head, {}, std::span<char>(exact)), msg.size());
  EXPECT_EQ(exact, msg);
}

// What the writer produces, the parser reads back to the same head.
TEST(HeadWriter, OutputParsesBack) {
  RequestParser p, back;
  const RequestHead& head = parse_request(
      p, "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  const std::array<Header, 1> add = {Header{"x-request-id", "1"}};
  HeadEdits edits;
  edits.add = add;
  const std::string out = write(head, edits);
  ASSERT_TRUE(back.parse(out).complete());
  EXPECT_EQ(back.head().headers.size(), head.headers.size() + 1);
  EXPECT_EQ(back.head().body, head.body);
  EXPECT_TRUE(back.head().expect_continue);
}

}  // namespace
}  // namespace sm::http
