// The reporter against a real collector socket on loopback: batches arrive as Zipkin's
// POST /api/v2/spans; a refusing, stalled or absent collector costs dropped spans (counted)
// and never a blocked caller.
#include "tracing/reporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace sm::tracing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A collector on 127.0.0.1: answers every request with `status` (0: reads and never
// answers), records the request lines and bodies.
class Collector {
 public:
  explicit Collector(int status) : status_(status) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Collector() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> bodies() {
    std::lock_guard l(mu_);
    return bodies_;
  }
  std::vector<std::string> heads() {
    std::lock_guard l(mu_);
    return heads_;
  }

 private:
  void run() {
    std::vector<int> stalled;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      char buf[65536];
      size_t need = std::string::npos;
      while (in.size() < need) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        size_t end = in.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
          size_t cl = in.find("Content-Length: ");
          need = end + 4 + std::stoul(in.substr(cl + 16));
        }
      }
      size_t end = in.find("\r\n\r\n");
      {
        std::lock_guard l(mu_);
        heads_.push_back(in.substr(0, end));
        bodies_.push_back(end == std::string::npos ? "" : in.substr(end + 4));
      }
      if (status_ == 0) {
        stalled.push_back(c);  // never answered
        continue;
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 0\r\n\r\n";
      (void)!::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
    for (int c : stalled) ::close(c);
  }

  int status_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> heads_, bodies_;
  std::thread thread_;
};

Span span(uint64_t id) {
  Span s;
  s.trace_id = TraceId{0, 0x463ac35c9f6413adull, false};
  s.id = id;
  s.kind = SpanKind::client;
  s.timestamp_us = 1764720000000000;
  s.duration_us = 10;
  s.local.service_name = "productpage-v1";
  return s;
}

ReporterConfig config(uint16_t port) {
  ReporterConfig c;
  c.collector = {"127.0.0.1", port};
  c.flush_interval = 50ms;
  c.timeouts.connect = 200ms;
  c.timeouts.total = 300ms;
  return c;
}

template <typename Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 3000ms) {
  for (auto end = Clock::now() + limit; Clock::now() < end; std::this_thread::sleep_for(10ms))
    if (p()) return true;
  return p();
}

TEST(Reporter, BatchesArriveAsZipkinPosts) {
  Collector col(202);
  Reporter r(config(col.port()));
  for (uint64_t i = 1; i <= 5; ++i) r.report(span(i));
  ASSERT_TRUE(eventually([&] { return r.stats().spans_sent == 5; }));
  auto heads = col.heads();
  auto bodies = col.bodies();
  ASSERT_GE(heads.size(), 1u);
  EXPECT_EQ(heads[0].substr(0, heads[0].find("\r\n")), "POST /api/v2/spans HTTP/1.1");
  EXPECT_NE(heads[0].find("Content-Type: application/json"), std::string::npos);
  size_t total = 0;
  for (const auto& b : bodies) total += nlohmann::json::parse(b).size();
  EXPECT_EQ(total, 5u);
  EXPECT_GE(r.stats().reports_sent, 1u);
  EXPECT_EQ(r.stats().spans_dropped, 0u);
  EXPECT_GE(r.stats().timer_flushed, 1u);  // a partial batch went when the interval passed
}

TEST(Reporter, AFullBatchGoesWithoutWaitingForTheTimer) {
  Collector col(202);
  ReporterConfig c = config(col.port());
  c.flush_interval = 60s;
  c.max_batch = 10;
  Reporter r(c);
  for (uint64_t i = 1; i <= 10; ++i) r.report(span(i));
  ASSERT_TRUE(eventually([&] { return r.stats().spans_sent == 10; }));
  EXPECT_EQ(r.stats().timer_flushed, 0u);
}

TEST(Reporter, ARefusingCollectorCostsTheBatch) {
  Collector col(500);
  Reporter r(config(col.port()));
  for (uint64_t i = 1; i <= 3; ++i) r.report(span(i));
  ASSERT_TRUE(eventually([&] { return r.stats().spans_dropped == 3; }));
  EXPECT_GE(r.stats().reports_dropped, 1u);
  EXPECT_EQ(r.stats().spans_sent, 0u);
}

TEST(Reporter, AGoneCollectorNeverBlocksTheCaller) {
  uint16_t port;
  {
    Collector gone(202);  // a port that was just free: nothing listens there now
    port = gone.port();
  }
  ReporterConfig c = config(port);
  c.max_queued = 100;
  Reporter r(c);
  const auto start = Clock::now();
  for (uint64_t i = 1; i <= 10000; ++i) r.report(span(i));
  // Not a benchmark: a caller that waited for the collector would take seconds here.
  EXPECT_LT(Clock::now() - start, 2000ms);
  EXPECT_LE(r.queued(), 100u);
  ASSERT_TRUE(eventually([&] { return r.stats().reports_failed >= 1; }));
  EXPECT_GE(r.stats().spans_dropped, 10000u - 100u);  // the queue bound, then the failed batch
}

TEST(Reporter, AStalledCollectorTimesOutAndTheQueueStaysBounded) {
  Collector col(0);  // reads the request, never answers
  ReporterConfig c = config(col.port());
  c.max_queued = 50;
  c.max_batch = 10;
  Reporter r(c);
  const auto start = Clock::now();
  for (uint64_t i = 1; i <= 1000; ++i) r.report(span(i));
  // A caller that waited out the stalled POST (300 ms each) would take minutes.
  EXPECT_LT(Clock::now() - start, 2000ms);
  ASSERT_TRUE(eventually([&] { return r.stats().reports_failed >= 1; }));
  EXPECT_LE(r.queued(), 50u);
  EXPECT_GE(r.stats().spans_dropped, 950u);
  EXPECT_EQ(r.stats().spans_sent, 0u);
}

TEST(Reporter, AddressesAreCheckedWithTheirField) {
  EXPECT_EQ(parse_host_port("zipkin:9411")->host, "zipkin");
  EXPECT_EQ(parse_host_port("198.18.0.3:9411")->port, 9411);
  EXPECT_EQ(parse_host_port("[2001:2::3]:9411")->host, "2001:2::3");
  for (auto bad : {"zipkin", ":9411", "zipkin:", "zipkin:0", "zipkin:65536", "2001:2::3:9411",
                   "[2001:2::3]9411", "zipkin:94x1"})
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
}

}  // namespace
}  // namespace sm::tracing
