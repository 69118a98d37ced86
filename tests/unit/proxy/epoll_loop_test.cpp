// epoll_loop.h against the Io contract, on real loopback sockets (no root). Every case runs
// on EpollLoop and on UringLoop: the session above them must not be able to tell them
// apart (accept, reads into lent buffers, pause/resume, buffer starvation, ordered sends and
// their accounting, connect outcomes reported later, FIN, RST, timers). Also the choice of
// loop (event_loop.h).
#include "proxy/epoll_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "proxy/event_loop.h"
#include "proxy/uring_loop.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {
namespace {

// Records what the loop reports, in order; data is kept (buffers held) or released at once.
struct Recorder final : IoEvents {
  Io* io = nullptr;
  bool hold = false;
  std::string data;
  std::vector<RecvBuf> held;
  std::vector<std::string> log;  // "accepted 0 inbound", "data 0", "connected 1", ...
  std::vector<Slot> accepted;
  int errors = 0, eofs = 0, connected = 0, failed = 0, sent = 0, timers = 0, paused = 0;
  int last_err = 0;
  Slot forward_to = kNoSlot;  // forward received buffers there instead

  void on_accepted(Slot s, Listener l, const Accepted&) override {
    accepted.push_back(s);
    log.push_back("accepted " + std::to_string(s) +
                  (l == Listener::inbound ? " inbound" : " outbound"));
  }
  void on_accept_paused(Listener, int) override { ++paused; }
  void on_connected(Slot s) override {
    ++connected;
    log.push_back("connected " + std::to_string(s));
  }
  void on_connect_failed(Slot s, int err) override {
    ++failed;
    last_err = err;
    log.push_back("connect_failed " + std::to_string(s));
  }
  void on_data(Slot s, const RecvBuf& b) override {
    if (log.empty() || log.back() != "data " + std::to_string(s))
      log.push_back("data " + std::to_string(s));
    if (forward_to != kNoSlot) return io->send(forward_to, b);
    data.append(b.data, b.len);
    if (hold)
      held.push_back(b);
    else
      io->release(b);
  }
  void on_eof(Slot s) override {
    ++eofs;
    log.push_back("eof " + std::to_string(s));
  }
  void on_error(Slot s, int err) override {
    ++errors;
    last_err = err;
    log.push_back("error " + std::to_string(s));
  }
  void on_sent(Slot) override { ++sent; }
  void on_timer(Slot s) override {
    ++timers;
    log.push_back("timer " + std::to_string(s));
  }
  void on_batch_end() override {}
};

UniqueFd loopback_listener(sockaddr_in* sa, int backlog = 16) {
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  *sa = {};
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *sa;
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(sa), sizeof *sa), 0);
  EXPECT_EQ(::listen(l.get(), backlog), 0);
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(sa), &len);
  return l;
}

// A connected loopback TCP pair: {client, server}.
std::pair<UniqueFd, UniqueFd> tcp_pair() {
  sockaddr_in sa{};
  UniqueFd l = loopback_listener(&sa);
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  int one = 1;
  ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  UniqueFd s(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return {std::move(c), std::move(s)};
}

Endpoint endpoint(const sockaddr_in& sa) {
  return Endpoint{IpAddr::v4(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

// Reads what `fd` has within `ms` (until EOF when `to_eof`); errno of a failed read in *err.
std::string drain(int fd, int ms, bool to_eof = false, int* err = nullptr) {
  std::string got;
  char buf[65536];
  for (int waited = 0; waited < ms;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) == 0) {
      waited += 10;
      if (!to_eof && !got.empty()) break;
      continue;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0 && err) *err = errno;
    break;  // EOF or error
  }
  return got;
}

template <typename Loop>
class LoopContract : public ::testing::Test {
 protected:
  void start(uint32_t buffers = 64, uint32_t size = 4096, int outbound_fd = -1,
             int inbound_fd = -1) {
    if constexpr (std::is_same_v<Loop, UringLoop>) {
      if (Status p = probe_io_uring(); !p)
        GTEST_SKIP() << "io_uring is blocked here (" << p.error().message()
                     << "): the epoll half of this test still runs";
    }
    LoopConfig cfg;
    cfg.recv_buffers = buffers;
    cfg.recv_buffer_size = size;
    cfg.ring_entries = 64;
    cfg.listen_fd[0] = outbound_fd;
    cfg.listen_fd[1] = inbound_fd;
    loop_ = std::make_unique<Loop>(cfg);
    rec_.io = loop_.get();
    Status s = loop_->init(&rec_);
    ASSERT_TRUE(s) << s.error().message();
  }
  template <typename Until>
  bool run_until(Until done, int rounds = 100) {
    for (int i = 0; i < rounds && !done(); ++i) loop_->run_once(20'000'000);
    return done();
  }
  void rounds(int n) {
    for (int i = 0; i < n; ++i) loop_->run_once(5'000'000);
  }
  Recorder rec_;
  std::unique_ptr<Loop> loop_;
};

using Loops = ::testing::Types<EpollLoop, UringLoop>;
class LoopName {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, EpollLoop> ? "epoll" : "uring";
  }
};
TYPED_TEST_SUITE(LoopContract, Loops, LoopName);

TYPED_TEST(LoopContract, AcceptsOnEachListenerAndReadsWhatTheClientSent) {
  sockaddr_in out_sa{}, in_sa{};
  UniqueFd out = loopback_listener(&out_sa);
  UniqueFd in = loopback_listener(&in_sa);
  this->start(64, 4096, out.get(), in.get());
  if (this->IsSkipped()) return;
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&in_sa), sizeof in_sa), 0);
  ASSERT_EQ(::send(c.get(), "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.data.size() >= 18; }));
  ASSERT_EQ(this->rec_.accepted.size(), 1u);
  const std::string s = std::to_string(this->rec_.accepted[0]);
  EXPECT_EQ(this->rec_.log, (std::vector<std::string>{"accepted " + s + " inbound", "data " + s}))
      << "on_accepted comes before any data";
  EXPECT_EQ(this->rec_.data, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(this->loop_->buffers_lent(), 0u);
  this->loop_->close(this->rec_.accepted[0], CloseHow::graceful);
}

// Item 6 of UringLoop's tests, on both: pause, bytes arrive, nothing is delivered until the
// resume, then everything is (epoll: readiness raised while paused is remembered).
TYPED_TEST(LoopContract, BytesArrivingWhilePausedAreDeliveredAfterTheResume) {
  this->start();
  if (this->IsSkipped()) return;
  auto [client, server] = tcp_pair();
  Slot s = this->loop_->adopt(server.release(), Listener::outbound, {});
  this->rounds(2);
  this->loop_->pause_reading(s);
  this->rounds(3);  // io_uring: the cancel completes
  ASSERT_EQ(::send(client.get(), "hello", 5, 0), 5);
  this->rounds(5);
  EXPECT_EQ(this->rec_.data, "") << "data delivered while paused";
  this->loop_->resume_reading(s);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.data.size() >= 5; }));
  EXPECT_EQ(this->rec_.data, "hello");
  this->loop_->pause_reading(s);
  this->loop_->resume_reading(s);  // same round: must keep reading
  ASSERT_EQ(::send(client.get(), " again", 6, 0), 6);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.data.size() >= 11; }));
  EXPECT_EQ(this->rec_.data, "hello again");
  this->loop_->close(s, CloseHow::graceful);
}

// Item 8 of UringLoop's tests, on both: a read that ran out of buffers resumes when buffers
// come back, but only for the connection it belonged to.
TYPED_TEST(LoopContract, AStarvedReadIsNeverResumedOnTheSlotsNextConnection) {
  this->start(16, 1024);
  if (this->IsSkipped()) return;
  this->rec_.hold = true;
  auto [client, server] = tcp_pair();
  Slot s = this->loop_->adopt(server.release(), Listener::outbound, {});
  std::string burst(32 * 1024, 'x');
  ASSERT_EQ(::send(client.get(), burst.data(), burst.size(), 0),
            static_cast<ssize_t>(burst.size()));
  this->run_until([&] { return this->rec_.held.size() >= 16; });
  ASSERT_EQ(this->rec_.held.size(), 16u) << "every buffer is held: the read starves";
  EXPECT_EQ(this->loop_->buffers_lent(), 16u);
  this->rounds(2);
  this->loop_->close(s, CloseHow::reset);
  // A connect that stays pending: a listener whose one-slot queue is already full.
  sockaddr_in sa{};
  UniqueFd l = loopback_listener(&sa, 0);
  UniqueFd first(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(first.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  int err = 0;
  Slot up = this->loop_->connect(endpoint(sa), std::nullopt, &err);
  ASSERT_EQ(up, s) << "the freed slot is reused";
  this->rounds(2);
  const size_t before = this->rec_.data.size();
  for (const RecvBuf& b : this->rec_.held) this->loop_->release(b);
  this->rec_.held.clear();
  this->rounds(3);
  EXPECT_EQ(this->rec_.data.size(), before) << "the old connection's read resumed";
  EXPECT_EQ(this->rec_.errors + this->rec_.failed + this->rec_.connected + this->rec_.eofs, 0);
  this->loop_->close(up, CloseHow::reset);
  this->rounds(2);
  EXPECT_EQ(this->loop_->buffers_lent(), 0u);
}

// ... and a starved read on the same connection goes on once buffers are back.
TYPED_TEST(LoopContract, AStarvedReadGoesOnWhenBuffersComeBack) {
  this->start(16, 1024);
  if (this->IsSkipped()) return;
  this->rec_.hold = true;
  auto [client, server] = tcp_pair();
  Slot s = this->loop_->adopt(server.release(), Listener::outbound, {});
  std::string burst(40 * 1024, 'y');
  ASSERT_EQ(::send(client.get(), burst.data(), burst.size(), 0),
            static_cast<ssize_t>(burst.size()));
  this->run_until([&] { return this->rec_.held.size() >= 16; });
  ASSERT_EQ(this->rec_.held.size(), 16u);
  this->rec_.hold = false;
  for (const RecvBuf& b : this->rec_.held) this->loop_->release(b);
  this->rec_.held.clear();
  ASSERT_TRUE(this->run_until([&] { return this->rec_.data.size() >= burst.size(); }));
  EXPECT_EQ(this->rec_.data, burst);
  this->loop_->close(s, CloseHow::graceful);
}

// Item 3 of UringLoop's tests, on both: small segments queued behind a stalled send are
// copied, so they pin no receive buffer; queued() counts what is unsent; order is kept.
TYPED_TEST(LoopContract, SmallSegmentsQueuedBehindAStalledSendHoldNoBuffers) {
  this->start(16, 4096);
  if (this->IsSkipped()) return;
  auto [c1, s1] = tcp_pair();
  auto [c2, s2] = tcp_pair();  // c2 never reads (until the end)
  Slot in = this->loop_->adopt(s1.release(), Listener::outbound, {});
  Slot out = this->loop_->adopt(s2.release(), Listener::outbound, {});
  this->rec_.forward_to = out;
  const std::string big(16 << 20, 'B');
  this->loop_->send(out, big);
  EXPECT_EQ(this->loop_->queued(out).bytes, big.size()) << "queued at once, sent later";
  EXPECT_EQ(this->rec_.sent, 0) << "on_sent inside send()";
  this->rounds(5);
  ASSERT_GT(this->loop_->queued(out).bytes, 0u) << "the kernel took 16 MiB: no stall";
  ASSERT_LT(this->loop_->queued(out).bytes, big.size());
  EXPECT_GT(this->rec_.sent, 0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(::send(c1.get(), "x", 1, 0), 1);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    this->loop_->run_once(1'000'000);
  }
  this->rounds(3);
  EXPECT_EQ(this->loop_->queued(out).buffers, 0u);
  EXPECT_EQ(this->loop_->buffers_lent(), 0u);
  std::string got;
  char buf[65536];
  for (int i = 0; i < 100000 && got.size() < big.size() + 50; ++i) {
    this->loop_->run_once(1'000'000);
    ssize_t n = ::recv(c2.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got.size(), big.size() + 50);
  EXPECT_EQ(got.substr(big.size()), std::string(50, 'x'));
  EXPECT_TRUE(got.compare(0, big.size(), big) == 0);
  this->rounds(2);
  EXPECT_EQ(this->loop_->queued(out).bytes, 0u);
  this->loop_->close(in, CloseHow::graceful);
  this->loop_->close(out, CloseHow::graceful);
}

// A large received segment is forwarded in its own buffer: queued() counts it as a lent
// buffer until the send completes, then the buffer is back in the pool.
TYPED_TEST(LoopContract, AForwardedBufferIsLentUntilItsSendCompletes) {
  this->start(16, 4096);
  if (this->IsSkipped()) return;
  auto [c1, s1] = tcp_pair();
  auto [c2, s2] = tcp_pair();
  Slot in = this->loop_->adopt(s1.release(), Listener::outbound, {});
  Slot out = this->loop_->adopt(s2.release(), Listener::outbound, {});
  this->loop_->send(out, std::string(16 << 20, 'S'));  // out stalls: c2 does not read yet
  this->rounds(3);
  this->rec_.forward_to = out;
  const std::string chunk(4096, 'z');
  ASSERT_EQ(::send(c1.get(), chunk.data(), chunk.size(), 0), 4096);
  ASSERT_TRUE(this->run_until([&] { return this->loop_->queued(out).buffers > 0; }));
  EXPECT_GT(this->loop_->buffers_lent(), 0u);
  std::string got;
  char buf[65536];
  for (int i = 0; i < 100000 && got.size() < (16u << 20) + 4096; ++i) {
    this->loop_->run_once(1'000'000);
    ssize_t n = ::recv(c2.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got.size(), (16u << 20) + 4096);
  EXPECT_EQ(got.substr(16u << 20), chunk);
  this->rounds(2);
  EXPECT_EQ(this->loop_->queued(out).buffers, 0u);
  EXPECT_EQ(this->loop_->buffers_lent(), 0u);
  this->loop_->close(in, CloseHow::graceful);
  this->loop_->close(out, CloseHow::graceful);
}

TYPED_TEST(LoopContract, BytesQueuedBeforeTheConnectGoOutAfterOnConnected) {
  this->start();
  if (this->IsSkipped()) return;
  sockaddr_in sa{};
  UniqueFd l = loopback_listener(&sa);
  int err = 0;
  Slot up = this->loop_->connect(endpoint(sa), std::nullopt, &err);
  ASSERT_NE(up, kNoSlot) << strerror(err);
  this->loop_->send(up, std::string_view("request"));
  EXPECT_EQ(this->rec_.connected, 0) << "reported from inside connect()";
  ASSERT_TRUE(this->run_until([&] { return this->rec_.connected == 1; }));
  ASSERT_TRUE(this->run_until([&] { return this->loop_->queued(up).bytes == 0; }));
  EXPECT_GT(this->rec_.sent, 0);
  UniqueFd peer(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer);
  EXPECT_EQ(drain(peer.get(), 2000), "request");
  ASSERT_EQ(::send(peer.get(), "response", 8, 0), 8);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.data.size() >= 8; }));
  EXPECT_EQ(this->rec_.data, "response");
  this->loop_->close(up, CloseHow::graceful);
  EXPECT_EQ(drain(peer.get(), 2000, true), "") << "FIN after close";
}

TYPED_TEST(LoopContract, AConnectToAClosedPortFailsWithItsErrno) {
  this->start();
  if (this->IsSkipped()) return;
  sockaddr_in sa{};
  {
    UniqueFd gone = loopback_listener(&sa);  // a port nobody listens on once closed
  }
  int err = 0;
  Slot up = this->loop_->connect(endpoint(sa), std::nullopt, &err);
  ASSERT_NE(up, kNoSlot) << "only a socket that cannot be made fails at once";
  EXPECT_EQ(this->rec_.failed, 0) << "reported from inside connect()";
  ASSERT_TRUE(this->run_until([&] { return this->rec_.failed == 1; }));
  EXPECT_EQ(this->rec_.last_err, ECONNREFUSED);
  EXPECT_EQ(this->rec_.connected + this->rec_.errors + this->rec_.eofs, 0);
  this->loop_->close(up, CloseHow::reset);
}

TYPED_TEST(LoopContract, AResetCloseSendsRstAndAGracefulOneSendsFin) {
  this->start();
  if (this->IsSkipped()) return;
  auto [c1, s1] = tcp_pair();
  auto [c2, s2] = tcp_pair();
  Slot a = this->loop_->adopt(s1.release(), Listener::outbound, {});
  Slot b = this->loop_->adopt(s2.release(), Listener::outbound, {});
  this->rounds(2);
  this->loop_->close(a, CloseHow::reset);
  this->loop_->close(b, CloseHow::graceful);
  this->rounds(2);
  int err = 0;
  drain(c1.get(), 2000, true, &err);
  EXPECT_EQ(err, ECONNRESET);
  err = 0;
  EXPECT_EQ(drain(c2.get(), 2000, true, &err), "");
  EXPECT_EQ(err, 0) << "FIN, not RST";
  EXPECT_EQ(this->rec_.eofs + this->rec_.errors, 0) << "no event after close";
}

TYPED_TEST(LoopContract, ShutdownWriteSendsFinAndReadingGoesOnUntilThePeersFin) {
  this->start();
  if (this->IsSkipped()) return;
  auto [client, server] = tcp_pair();
  Slot s = this->loop_->adopt(server.release(), Listener::outbound, {});
  this->loop_->send(s, std::string_view("bye"));
  ASSERT_TRUE(this->run_until([&] { return this->loop_->queued(s).bytes == 0; }));
  this->loop_->shutdown_write(s);
  EXPECT_EQ(drain(client.get(), 2000, true), "bye");
  ASSERT_EQ(::send(client.get(), "late", 4, 0), 4);
  ::shutdown(client.get(), SHUT_WR);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.eofs == 1; }));
  EXPECT_EQ(this->rec_.data, "late");
  const std::string ss = std::to_string(s);
  EXPECT_EQ(this->rec_.log,
            (std::vector<std::string>{"accepted " + ss + " outbound", "data " + ss, "eof " + ss}));
  this->loop_->close(s, CloseHow::graceful);
}

TYPED_TEST(LoopContract, ASendToAPeerThatResetIsAnError) {
  this->start();
  if (this->IsSkipped()) return;
  auto [client, server] = tcp_pair();
  Slot s = this->loop_->adopt(server.release(), Listener::outbound, {});
  this->loop_->pause_reading(s);  // the error must come from the send side
  this->rounds(3);
  linger lg{1, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  client.reset();
  this->rounds(2);
  for (int i = 0; i < 20 && this->rec_.errors == 0; ++i) {
    this->loop_->send(s, std::string(64 * 1024, 'p'));
    this->rounds(2);
  }
  EXPECT_EQ(this->rec_.errors, 1);
  EXPECT_TRUE(this->rec_.last_err == ECONNRESET || this->rec_.last_err == EPIPE)
      << strerror(this->rec_.last_err);
  this->loop_->close(s, CloseHow::reset);
}

TYPED_TEST(LoopContract, OneTimerPerSlotMovesAndCancels) {
  this->start();
  if (this->IsSkipped()) return;
  auto [c1, s1] = tcp_pair();
  auto [c2, s2] = tcp_pair();
  Slot a = this->loop_->adopt(s1.release(), Listener::outbound, {});
  Slot b = this->loop_->adopt(s2.release(), Listener::outbound, {});
  const Nanos now = this->loop_->now();
  this->loop_->set_timer(a, now + 10'000'000);
  this->loop_->set_timer(a, now + 40'000'000);  // moved, not added
  this->loop_->set_timer(b, now + 20'000'000);
  this->loop_->cancel_timer(b);
  ASSERT_TRUE(this->run_until([&] { return this->rec_.timers > 0; }));
  EXPECT_GE(this->loop_->now(), now + 40'000'000) << "fired before its deadline";
  this->rounds(4);
  EXPECT_EQ(this->rec_.timers, 1);
  EXPECT_EQ(this->rec_.log.back(), "timer " + std::to_string(a));
  this->loop_->set_timer(b, this->loop_->now());
  this->loop_->close(b, CloseHow::graceful);  // a closed slot's timer never fires
  this->rounds(2);
  EXPECT_EQ(this->rec_.timers, 1);
  this->loop_->close(a, CloseHow::graceful);
}

TEST(EventLoopChoice, EpollIsTakenWithoutProbingAndUringOnlyWhereItRuns) {
  std::string note = "stale";
  auto e = choose_event_loop(EventLoop::epoll, &note);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, EventLoop::epoll);
  EXPECT_EQ(note, "");
  const bool uring_ok = static_cast<bool>(probe_io_uring());
  auto a = choose_event_loop(EventLoop::automatic, &note);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(*a, uring_ok ? EventLoop::uring : EventLoop::epoll);
  EXPECT_EQ(note.empty(), uring_ok) << note;
  auto u = choose_event_loop(EventLoop::uring, &note);
  EXPECT_EQ(static_cast<bool>(u), uring_ok);
  EXPECT_STREQ(event_loop_name(EventLoop::epoll), "epoll");
  EXPECT_STREQ(event_loop_name(EventLoop::uring), "uring");
}

}  // namespace
}  // namespace sm::proxy
