// sm_http vs llhttp on the proxy's workload: a whole request (head + body) parsed to its
// last byte, either as one recv or as 16-byte pieces from a growing buffer; plus the cost
// of writing a head back with the proxy's edits. Fixtures are in bench/http/requests/.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "http/body_framer.h"
#include "http/head_writer.h"
#include "http/llhttp_request_parser.h"
#include "http/request_parser.h"

namespace sm::http {
namespace {

constexpr const char* kRequests[] = {"bookinfo_get", "ratings_post_chunked", "sixty_headers"};

// Fixtures are written with LF line ends for readability; the wire has CRLF.
std::string load(const std::string& name) {
  std::ifstream in(std::string(SM_BENCH_HTTP_DIR) + "/requests/" + name + ".http",
                   std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string crlf;
  for (char c : text.str()) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  return crlf;
}

const std::string& request(int64_t index) {
  static const std::array<std::string, 3> loaded = {load(kRequests[0]), load(kRequests[1]),
                                                    load(kRequests[2])};
  return loaded[static_cast<size_t>(index)];
}

// The proxy's call pattern: the head parser sees the buffer from the message start, the
// body framer only the bytes after what it has seen. piece == 0: the whole message at once.
struct SmHttp {
  RequestParser parser;
  BodyFramer framer;

  bool run(std::string_view msg, size_t piece) {
    parser.reset();
    size_t n = 0;
    ParseResult r;
    do {
      n = piece ? std::min(msg.size(), n + piece) : msg.size();
      r = parser.parse(msg.substr(0, n));
    } while (r.need_more() && n < msg.size());
    if (!r.complete()) return false;
    benchmark::DoNotOptimize(parser.head().headers.size());
    framer.reset(parser.head().body);
    ParseResult b = framer.feed(msg.substr(r.consumed, n - r.consumed));
    while (b.need_more() && n < msg.size()) {
      const size_t m = std::min(msg.size(), n + piece);
      b = framer.feed(msg.substr(n, m - n));
      n = m;
    }
    return b.complete();
  }
};

struct Llhttp {
  LlhttpRequestParser parser;

  bool run(std::string_view msg, size_t piece) {
    parser.reset();
    size_t n = 0;
    ParseStatus s;
    do {
      n = piece ? std::min(msg.size(), n + piece) : msg.size();
      s = parser.parse_head(msg.substr(0, n));
    } while (s == ParseStatus::need_more && n < msg.size());
    if (s != ParseStatus::complete) return false;
    benchmark::DoNotOptimize(parser.head().headers.size());
    const size_t head = parser.head().head_size;
    ParseResult b = parser.feed_body(msg.substr(head, n - head));
    while (b.need_more() && n < msg.size()) {
      const size_t m = std::min(msg.size(), n + piece);
      b = parser.feed_body(msg.substr(n, m - n));
      n = m;
    }
    return b.complete();
  }
};

template <class Parser>
void BM_Parse(benchmark::State& state) {
  const std::string& msg = request(state.range(0));
  const auto piece = static_cast<size_t>(state.range(1));
  Parser p;
  if (!p.run(msg, piece)) {
    state.SkipWithError("request did not parse");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.run(msg, piece));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
  state.SetLabel(std::string(kRequests[state.range(0)]) + (piece ? " in 16 B pieces" : " whole"));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t piece : {0, 16}) b->Args({r, piece});
  }
}
BENCHMARK(BM_Parse<SmHttp>)->Name("sm_http")->Apply(Args);
BENCHMARK(BM_Parse<Llhttp>)->Name("llhttp")->Apply(Args);

// Forwarding a response head: server overwritten, service time and request id appended,
// hop-by-hop fields removed.
void BM_WriteHead(benchmark::State& state) {
  const std::string& msg = request(state.range(0));
  RequestParser parser;
  if (!parser.parse(msg).complete()) {
    state.SkipWithError("request did not parse");
    return;
  }
  const std::array<Header, 1> set = {Header{"server", "sockmesh"}};
  const std::array<Header, 2> add = {Header{"x-sockmesh-upstream-service-time", "3"},
                                     Header{"x-forwarded-proto", "http"}};
  HeadEdits edits;
  edits.remove_hop_by_hop = true;
  edits.set = set;
  edits.add = add;
  std::vector<char> out(8192);
  for (auto _ : state) {
    benchmark::DoNotOptimize(write_head(parser.head(), edits, std::span<char>(out)));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(kRequests[state.range(0)]);
}
BENCHMARK(BM_WriteHead)->Name("write_head")->DenseRange(0, 2);

}  // namespace
}  // namespace sm::http

BENCHMARK_MAIN();
