// http_response.h: a Consul response by Content-Length, chunked or until close, in any
// pieces, with headers readable by lowercase name.
#include "consul/http_response.h"

#include <gtest/gtest.h>

namespace sm::consul {
namespace {

using S = ResponseReader::State;

// Feeds `text` in pieces of `step` bytes; returns the final state.
S feed_in_pieces(ResponseReader& r, const std::string& text, size_t step) {
  S s = S::need_more;
  for (size_t i = 0; i < text.size(); i += step) s = r.feed(text.substr(i, step));
  return s;
}

const std::string kLength =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 42\r\n"
    "Content-Length: 13\r\n\r\n{\"reviews\":[]";

const std::string kChunked =
    "HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\n[{\"a\"\r\n3;ext=1\r\n:1}\r\n1\r\n]\r\n0\r\nX-Trailer: y\r\n\r\n";

TEST(ResponseReader, ContentLengthInAnyPieces) {
  for (size_t step : {1, 3, 17, 1000}) {
    ResponseReader r;
    ASSERT_EQ(feed_in_pieces(r, kLength, step), S::complete) << step;
    EXPECT_EQ(r.response().status, 200);
    EXPECT_EQ(r.response().header("x-consul-index"), "42");
    EXPECT_EQ(r.response().body, "{\"reviews\":[]");
    EXPECT_TRUE(r.response().keep_alive);
  }
}

TEST(ResponseReader, ChunkedIsDecodedInAnyPieces) {
  for (size_t step : {1, 2, 5, 1000}) {
    ResponseReader r;
    ASSERT_EQ(feed_in_pieces(r, kChunked, step), S::complete) << step;
    EXPECT_EQ(r.response().body, "[{\"a\":1}]");
    EXPECT_EQ(r.response().header("x-consul-index"), "7");
  }
}

TEST(ResponseReader, UntilCloseCompletesOnClose) {
  ResponseReader r;
  EXPECT_EQ(r.feed("HTTP/1.0 200 OK\r\n\r\n[1,2"), S::need_more);
  EXPECT_EQ(r.feed(",3]"), S::need_more);
  EXPECT_EQ(r.on_close(), S::complete);
  EXPECT_EQ(r.response().body, "[1,2,3]");
  EXPECT_FALSE(r.response().keep_alive);
}

TEST(ResponseReader, ErrorsAreNamed) {
  ResponseReader a;
  EXPECT_EQ(a.feed("garbage\r\n\r\n"), S::error);
  EXPECT_NE(a.error().find("invalid response head"), std::string::npos);

  ResponseReader b;
  b.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1]");
  EXPECT_EQ(b.on_close(), S::error);
  EXPECT_EQ(b.error(), "connection closed mid-body");

  ResponseReader c;
  EXPECT_EQ(c.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), S::error);
  EXPECT_EQ(c.error(), "invalid chunked body");

  ResponseReader d(8);
  EXPECT_EQ(d.feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), S::error);
  EXPECT_EQ(d.error(), "response too large");

  ResponseReader e;
  EXPECT_EQ(e.on_close(), S::error);
  EXPECT_EQ(e.error(), "connection closed before a response");
}

TEST(ResponseReader, ResetReadsTheNextResponse) {
  ResponseReader r;
  ASSERT_EQ(r.feed(kLength), S::complete);
  r.reset();
  ASSERT_EQ(r.feed("HTTP/1.1 404 Not Found\r\nX-Consul-Index: 9\r\nContent-Length: 0\r\n\r\n"),
            S::complete);
  EXPECT_EQ(r.response().status, 404);
  EXPECT_EQ(r.response().body, "");
}

}  // namespace
}  // namespace sm::consul
