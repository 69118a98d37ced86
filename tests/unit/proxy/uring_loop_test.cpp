// uring_loop.h on real io_uring and loopback sockets (no root): the receive side's pause
// and resume, buffer starvation and slot reuse, and small segments that must not pin
// receive buffers.
#include "proxy/uring_loop.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_data_segs_in (glibc's lacks it)
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "sockmesh/unique_fd.h"

namespace sm::proxy {
namespace {

// Records what the loop reports; data is kept (buffers held) or released at once.
struct Recorder final : IoEvents {
  UringLoop* loop = nullptr;
  bool hold = false;
  std::string data;
  std::vector<RecvBuf> held;
  int errors = 0, eofs = 0, connected = 0, failed = 0;
  Slot forward_to = kNoSlot;  // forward received buffers there instead

  void on_accepted(Slot, Listener, const Accepted&) override {}
  void on_accept_paused(Listener, int) override {}
  void on_connected(Slot) override { ++connected; }
  void on_connect_failed(Slot, int) override { ++failed; }
  void on_data(Slot, const RecvBuf& b) override {
    if (forward_to != kNoSlot) return loop->send(forward_to, b);
    data.append(b.data, b.len);
    if (hold)
      held.push_back(b);
    else
      loop->release(b);
  }
  void on_eof(Slot) override { ++eofs; }
  void on_error(Slot, int) override { ++errors; }
  void on_sent(Slot) override {}
  void on_timer(Slot) override {}
  void on_batch_end() override {}
};

// A connected loopback TCP pair: {client, server}.
std::pair<UniqueFd, UniqueFd> tcp_pair() {
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(::listen(l.get(), 4), 0);
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  int one = 1;
  ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  UniqueFd s(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return {std::move(c), std::move(s)};
}

class UringLoopTest : public ::testing::Test {
 protected:
  void start(uint32_t buffers = 64, uint32_t size = 4096) {
    LoopConfig cfg;
    cfg.recv_buffers = buffers;
    cfg.recv_buffer_size = size;
    cfg.ring_entries = 64;
    loop_ = std::make_unique<UringLoop>(cfg);
    rec_.loop = loop_.get();
    Status s = loop_->init(&rec_);
    ASSERT_TRUE(s) << s.error().message();
  }
  template <typename Until>
  void run_until(Until done, int rounds = 40) {
    for (int i = 0; i < rounds && !done(); ++i) loop_->run_once(20'000'000);
  }
  // Runs the loop while reading what arrives on `fd`, until `want` bytes (or `rounds`).
  std::string read_while_running(int fd, size_t want, int rounds) {
    std::string got;
    std::vector<char> buf(65536);
    for (int i = 0; i < rounds && got.size() < want; ++i) {
      loop_->run_once(1'000'000);
      ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) got.append(buf.data(), static_cast<size_t>(n));
    }
    return got;
  }
  Recorder rec_;
  std::unique_ptr<UringLoop> loop_;
};

// Item 6: a pause whose cancel is still on its way, then a resume: the -ECANCELED
// completion arrives with reading wanted again, and the recv must be armed anew.
TEST_F(UringLoopTest, PauseThenResumeBeforeTheCancelCompletesKeepsReading) {
  start();
  auto [client, server] = tcp_pair();
  Slot s = loop_->adopt(server.release(), Listener::outbound, {});
  loop_->run_once(0);  // the multishot recv is in the kernel
  loop_->pause_reading(s);
  loop_->resume_reading(s);  // same round: the cancel has not even been submitted
  run_until([&] { return false; }, 3);
  ASSERT_EQ(::send(client.get(), "hello", 5, 0), 5);
  run_until([&] { return rec_.data.size() >= 5; });
  EXPECT_EQ(rec_.data, "hello");
  loop_->close(s, CloseHow::graceful);
}

// Item 8: a recv that ran out of buffers is re-armed when buffers come back, but only for
// the connection it belonged to: here the slot went to an upstream still connecting.
TEST_F(UringLoopTest, AStarvedRecvIsNeverRearmedOnTheSlotsNextConnection) {
  start(16, 1024);
  rec_.hold = true;
  auto [client, server] = tcp_pair();
  Slot s = loop_->adopt(server.release(), Listener::outbound, {});
  std::string burst(32 * 1024, 'x');
  ASSERT_EQ(::send(client.get(), burst.data(), burst.size(), 0),
            static_cast<ssize_t>(burst.size()));
  run_until([&] { return rec_.held.size() >= 16; });
  ASSERT_EQ(rec_.held.size(), 16u) << "every buffer is held: the recv starves";
  run_until([&] { return false; }, 2);
  loop_->close(s, CloseHow::reset);
  // A connect that stays pending: a listener whose one-slot queue is already full.
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(l.get(), 0), 0);
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  UniqueFd first(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(first.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  int err = 0;
  Slot up = loop_->connect(Endpoint{IpAddr::v4(sa.sin_addr.s_addr), ntohs(sa.sin_port)},
                           std::nullopt, &err);
  ASSERT_EQ(up, s) << "the freed slot is reused";
  run_until([&] { return false; }, 2);
  for (const RecvBuf& b : rec_.held) loop_->release(b);
  rec_.held.clear();
  run_until([&] { return false; }, 3);
  EXPECT_FALSE(loop_->recv_armed(up)) << "a recv armed on a connecting socket";
  EXPECT_EQ(rec_.errors + rec_.failed + rec_.connected, 0);
  loop_->close(up, CloseHow::reset);
  run_until([&] { return false; }, 2);
  EXPECT_EQ(loop_->buffers_lent(), 0u);
}

// Item 3: segments smaller than a buffer are copied into the send queue and their buffer
// given back at once, so a peer dribbling bytes towards a stalled reader pins none.
TEST_F(UringLoopTest, SmallSegmentsQueuedBehindAStalledSendHoldNoBuffers) {
  start(16, 4096);
  auto [c1, s1] = tcp_pair();
  auto [c2, s2] = tcp_pair();  // c2 never reads (until the end)
  Slot in = loop_->adopt(s1.release(), Listener::outbound, {});
  Slot out = loop_->adopt(s2.release(), Listener::outbound, {});
  rec_.forward_to = out;
  const std::string big(16 << 20, 'B');
  loop_->send(out, big);
  run_until([&] { return false; }, 5);
  ASSERT_GT(loop_->queued(out).bytes, 0u) << "the kernel took 16 MiB: the send never stalled";
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(::send(c1.get(), "x", 1, 0), 1);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    loop_->run_once(1'000'000);
  }
  run_until([&] { return false; }, 3);
  EXPECT_EQ(loop_->queued(out).buffers, 0u);
  EXPECT_EQ(loop_->buffers_lent(), 0u);
  // Everything arrives, in order.
  std::string got = read_while_running(c2.get(), big.size() + 50, 100000);
  EXPECT_EQ(got.size(), big.size() + 50);
  EXPECT_EQ(got.substr(big.size()), std::string(50, 'x'));
  EXPECT_TRUE(got.compare(0, big.size(), big) == 0);
  loop_->close(in, CloseHow::graceful);
  loop_->close(out, CloseHow::graceful);
}

// What one round queues for a connection (a response's head, then its body) leaves in one
// send, so the peer gets one segment instead of two: fewer sends, fewer wake-ups, and no
// delayed-ACK state flipped by segments of odd sizes.
TEST_F(UringLoopTest, WhatARoundQueuesForAConnectionLeavesAsOneSegment) {
  start();
  auto [client, server] = tcp_pair();
  Slot s = loop_->adopt(server.release(), Listener::outbound, {});
  run_until([&] { return false; }, 2);
  auto data_segs_in = [&] {
    tcp_info ti{};
    socklen_t len = sizeof ti;
    EXPECT_EQ(::getsockopt(client.get(), IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    return ti.tcpi_data_segs_in;
  };
  const uint32_t before = data_segs_in();
  const std::string head = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n";
  loop_->send(s, std::string_view(head));
  loop_->send(s, std::string_view("body"));
  EXPECT_EQ(read_while_running(client.get(), head.size() + 4, 100), head + "body");
  EXPECT_EQ(data_segs_in() - before, 1u);
  loop_->close(s, CloseHow::graceful);
}

}  // namespace
}  // namespace sm::proxy
