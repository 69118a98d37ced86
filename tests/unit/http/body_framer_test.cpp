// The body-framing spec: where a body ends for each framing, chunked syntax with extensions
// and trailers split at every byte, and each malformed chunk rejected.
#include "http/body_framer.h"

#include <gtest/gtest.h>

#include <string>

#include "feed.h"

namespace sm::http {
namespace {

using test::describe;
using test::frame_in_pieces;
constexpr BodyFraming kChunked{BodyKind::chunked, 0};

TEST(BodyFramer, NoBodyIsCompleteAtOnce) {
  BodyFramer f;
  f.reset({BodyKind::none, 0});
  EXPECT_TRUE(f.done());
  EXPECT_EQ(describe(f.feed("GET / HTTP/1.1")), "complete 0");
}

TEST(BodyFramer, ContentLengthStopsAtTheLength) {
  BodyFramer f;
  f.reset({BodyKind::length, 10});
  EXPECT_EQ(describe(f.feed("0123")), "need_more 4");
  EXPECT_EQ(f.remaining(), 6u);
  EXPECT_EQ(describe(f.feed("456789GET /")), "complete 6");  // the rest is the next request
  EXPECT_EQ(describe(f.feed("more")), "complete 0");
}

TEST(BodyFramer, UntilCloseAndTunnelTakeEverything) {
  for (BodyKind kind : {BodyKind::until_close, BodyKind::tunnel}) {
    BodyFramer f;
    f.reset({kind, 0});
    EXPECT_EQ(describe(f.feed("abc")), "need_more 3");
    EXPECT_EQ(describe(f.feed("HTTP/1.1 200 OK\r\n")), "need_more 17");
    EXPECT_FALSE(f.done());
  }
}

TEST(BodyFramer, ChunkedWithExtensionsAndTrailers) {
  const std::string body =
      "5;name=value\r\nhello\r\n"
      "000A;a;b=\"q \\\" ;x\";c=tok\r\n0123456789\r\n"
      "3;flag\r\nabc\r\n"
      "0\r\n"
      "Expires: never\r\n"
      "Content-Lengthy: 1\r\n"  // only the framing fields themselves are refused
      "Content-Lengt: 1\r\n"
      "X-Checksum:\tabc def \r\n"
      "\r\n";
  BodyFramer f;
  f.reset(kChunked);
  EXPECT_EQ(describe(f.feed(body + "GET / HTTP/1.1\r\n")),
            "complete " + std::to_string(body.size()));
  EXPECT_EQ(frame_in_pieces(kChunked, body, 1), "complete " + std::to_string(body.size()));
}

TEST(BodyFramer, ChunkedSplitAtEveryByteEqualsWhole) {
  const std::string body =
      "1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "2\r\n\r\n\r\n"  // chunk data may itself be CRLF
      "0;last\r\nTrailer-A: 1\r\n\r\n";
  const std::string stream = body + "NEXT";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    BodyFramer f;
    f.reset(kChunked);
    const ParseResult a = f.feed(std::string_view(stream).substr(0, cut));
    size_t total = a.consumed;
    ParseResult b = a;
    if (a.need_more()) {
      b = f.feed(std::string_view(stream).substr(cut));
      total += b.consumed;
    }
    ASSERT_TRUE(b.complete()) << cut << ": " << describe(b);
    EXPECT_EQ(total, body.size()) << cut;
  }
}

TEST(BodyFramer, LeadingZerosAndLargeSizes) {
  BodyFramer f;
  f.reset(kChunked);
  EXPECT_TRUE(f.feed("0000000000000000000000003\r\n").need_more());
  EXPECT_EQ(f.remaining(), 3u);
  f.reset(kChunked);
  EXPECT_TRUE(f.feed("fffffffffffffff\r\n").need_more());  // 15 digits: fits
  EXPECT_EQ(f.remaining(), 0xfffffffffffffffull);
  f.reset(kChunked);
  EXPECT_TRUE(f.feed("ffffffffffffffff\r\n").need_more());  // 16 digits: still fits in 64 bits
  f.reset(kChunked);
  const ParseResult r = f.feed("10000000000000000\r\n");  // 2^64: overflow
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error.reason, "chunk size too large");
}

struct BadChunk {
  const char* name;
  const char* body;
};
// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadChunk& c, std::ostream* os) {
  *os << c.name;
}

class ChunkRejects : public ::testing::TestWithParam<BadChunk> {};

TEST_P(ChunkRejects, With400) {
  const std::string body = GetParam().body;
  BodyFramer f;
  f.reset(kChunked);
  const ParseResult whole = f.feed(body);
  ASSERT_TRUE(whole.failed()) << describe(whole);
  EXPECT_EQ(whole.error.status, 400);
  EXPECT_EQ(frame_in_pieces(kChunked, body, 1), describe(whole));  // same error byte by byte
}

constexpr BadChunk kBadChunks[] = {
    {"EmptySize", "\r\nabc\r\n0\r\n\r\n"},
    {"NonHexSize", "g\r\n"},
    {"SignedSize", "+5\r\nhello\r\n0\r\n\r\n"},
    {"HexPrefix", "0x5\r\nhello\r\n0\r\n\r\n"},
    {"SpaceBeforeSize", " 5\r\nhello\r\n0\r\n\r\n"},
    {"TrailingSpace", "5 \r\nhello\r\n0\r\n\r\n"},
    {"BareLfAfterSize", "5\nhello\r\n0\r\n\r\n"},
    {"BareCrAfterSize", "5\rhello\r\n0\r\n\r\n"},
    {"DataTooLong", "5\r\nhelloX\r\n0\r\n\r\n"},
    {"DataBareLf", "5\r\nhello\n0\r\n\r\n"},
    {"ExtNoName", "5;\r\nhello\r\n0\r\n\r\n"},
    {"ExtSpaceBeforeSemicolon", "5 ;a\r\nhello\r\n0\r\n\r\n"},
    {"ExtSpaceAfterSemicolon", "5; a\r\nhello\r\n0\r\n\r\n"},
    {"ExtSpaceAroundEquals", "5;a = b\r\nhello\r\n0\r\n\r\n"},
    {"ExtBadNameChar", "5;a(b)\r\nhello\r\n0\r\n\r\n"},
    {"ExtNoValue", "5;a=\r\nhello\r\n0\r\n\r\n"},
    {"ExtTrailingSpace", "5;a=b \r\nhello\r\n0\r\n\r\n"},
    {"ExtUnterminatedQuote", "5;a=\"b\r\nhello\r\n0\r\n\r\n"},
    {"ExtCtlInQuote", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"},
    {"ExtBareLf", "5;a=b\nhello\r\n0\r\n\r\n"},
    {"TrailerObsFold", "0\r\nA: 1\r\n 2\r\n\r\n"},
    {"TrailerSpaceBeforeColon", "0\r\nA : 1\r\n\r\n"},
    {"TrailerNoColon", "0\r\nA\r\n\r\n"},
    {"TrailerBareCr", "0\r\nA: 1\r2\r\n\r\n"},
    {"TrailerBareLf", "0\r\nA: 1\n\r\n"},
    {"FinalBareLf", "0\r\n\n"},
    {"TrailerTransferEncoding", "0\r\nTransfer-Encoding: chunked\r\n\r\n"},
    {"TrailerContentLength", "0\r\ncontent-LENGTH: 5\r\n\r\n"},
};

INSTANTIATE_TEST_SUITE_P(All, ChunkRejects, ::testing::ValuesIn(kBadChunks),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(BodyFramer, ChunkLineAndTrailerLimits) {
  Limits limits;
  limits.max_chunk_line = 8;
  EXPECT_EQ(frame_in_pieces(kChunked, "5;abcdef\r\nhello\r\n0\r\n\r\n", 1, limits), "complete 22");
  EXPECT_EQ(frame_in_pieces(kChunked, "5;abcdefg\r\nhello\r\n0\r\n\r\n", 1, limits),
            "error 400 chunk size line too long");
  limits.max_trailer_bytes = 10;
  EXPECT_EQ(frame_in_pieces(kChunked, "0\r\nA: 123\r\n\r\n", 3, limits), "complete 13");
  EXPECT_EQ(frame_in_pieces(kChunked, "0\r\nA: 1234\r\n\r\n", 3, limits),
            "error 431 trailer section too large");
}

TEST(BodyFramer, ErrorIsSticky) {
  BodyFramer f;
  f.reset(kChunked);
  ASSERT_TRUE(f.feed("z").failed());
  EXPECT_TRUE(f.feed("5\r\nhello\r\n").failed());
  f.reset(kChunked);
  EXPECT_TRUE(f.feed("5\r\n").need_more());
}

}  // namespace
}  // namespace sm::http
