// The hot restart hand-over (userspace/proxy/hot_restart.cpp) between two ends in one
// process, on real sockets: what arrives is the very listening sockets, checked; a refused
// peer gets nothing. The whole restart under load is an e2e test (under_load_test.cpp).
#include "proxy/hot_restart.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

namespace sm::proxy {
namespace {

// A listening TCP socket on 127.0.0.1: on *port (SO_REUSEPORT, as each worker's), or an
// ephemeral port when it is 0 (then *port says which).
UniqueFd listener(uint16_t* port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(s.get(), 8) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return UniqueFd();
  *port = ntohs(a.sin_port);
  return s;
}

ino_t inode(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

class HotRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.admin_port = opts_.outbound_port = opts_.inbound_port = 0;
    admin_ = listener(&opts_.admin_port);
    for (int i = 0; i < 2; ++i) {
      out_.push_back(listener(&opts_.outbound_port));
      in_.push_back(listener(&opts_.inbound_port));
    }
    ASSERT_TRUE(admin_ && out_[1] && in_[1]);
    opts_.base_id = static_cast<uint32_t>(::getpid());  // no other test's name
    opts_.restart_epoch = 1;
    ASSERT_TRUE(server_.start(opts_.base_id, 0));
    mine_.admin = admin_.get();
    for (int i = 0; i < 2; ++i) {
      mine_.outbound.push_back(out_[i].get());
      mine_.inbound.push_back(in_[i].get());
    }
  }
  // Runs take_over() in a thread while this one serves it, as the old proxy's main loop.
  Result<Handover> take(uid_t peer_uid) {
    auto child = std::async(std::launch::async, [&] { return take_over(opts_, peer_uid); });
    while (child.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready)
      last_ = server_.poll(mine_, 4200) == HotRestartServer::Event::handed_over
                  ? HotRestartServer::Event::handed_over
                  : last_;
    return child.get();
  }

  Options opts_;
  UniqueFd admin_;
  std::vector<UniqueFd> out_, in_;
  HotRestartServer server_;
  HotRestartServer::Sockets mine_;
  HotRestartServer::Event last_ = HotRestartServer::Event::none;
};

TEST_F(HotRestartTest, TheNewProxyGetsTheSameListeningSocketsThenTellsTheOldOneToDrain) {
  auto h = take(::geteuid());
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(last_, HotRestartServer::Event::handed_over);
  EXPECT_EQ(h->uptime_ms, 4200);
  ASSERT_EQ(h->outbound.size(), 2u);
  ASSERT_EQ(h->inbound.size(), 2u);
  EXPECT_EQ(inode(h->admin.get()), inode(admin_.get()));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(inode(h->outbound[i].get()), inode(out_[i].get())) << i;
    EXPECT_EQ(inode(h->inbound[i].get()), inode(in_[i].get())) << i;
  }
  EXPECT_EQ(server_.poll(mine_, 0), HotRestartServer::Event::none);  // not LIVE yet
  ASSERT_TRUE(drain_parent(*h));
  HotRestartServer::Event e = HotRestartServer::Event::none;
  for (int i = 0; i < 100 && e == HotRestartServer::Event::none; ++i) {
    e = server_.poll(mine_, 0);
    if (e == HotRestartServer::Event::none)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(e, HotRestartServer::Event::drain);
  // As the old proxy exits, its counters reach the new one, in pieces of whole lines.
  std::string lines;
  for (int i = 0; i < 3000; ++i)
    lines += "C outbound|9080||reviews upstream_rq_total " + std::to_string(i) + "\n";
  auto sender = std::async(std::launch::async, [&] { server_.send_counters(lines); });
  std::string got;
  bool alive = true;
  for (int i = 0; i < 200 && alive; ++i) {
    alive = read_parent(h->conn.get(), &got);
    if (alive) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  sender.get();
  EXPECT_FALSE(alive) << "the old proxy's end is closed once the counters are sent";
  EXPECT_EQ(got, lines);
  // A draining proxy hands nothing over again.
  opts_.restart_epoch = 1;
  auto again = take_over(opts_, ::geteuid());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("no proxy of epoch 0"), std::string::npos)
      << again.error().message();
}

TEST_F(HotRestartTest, AListenerOnAnotherPortIsRefusedNamingTheFlag) {
  opts_.inbound_port = static_cast<uint16_t>(opts_.inbound_port == 1 ? 2 : 1);
  auto h = take(::geteuid());
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("--inbound-port"), std::string::npos) << h.error().message();
}

TEST_F(HotRestartTest, NoProxyOfThePreviousEpochIsAClearError) {
  opts_.restart_epoch = 5;
  auto h = take_over(opts_, ::geteuid());
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("--restart-epoch 5: @sockmesh-proxy." +
                                     std::to_string(opts_.base_id) + ".4: no proxy of epoch 4"),
            std::string::npos)
      << h.error().message();
}

// A draining proxy hands nothing over, and says so at once.
TEST_F(HotRestartTest, ADrainingProxyRefusesAHandOverWithAClearError) {
  auto child = std::async(std::launch::async, [&] { return take_over(opts_, ::geteuid()); });
  while (child.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready)
    EXPECT_EQ(server_.poll(mine_, 0, /*willing=*/false), HotRestartServer::Event::none);
  auto h = child.get();
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("refused: the running proxy is draining"), std::string::npos)
      << h.error().message();
}

// A process of another uid posing as the running proxy (it bound the name first) hands
// the new proxy nothing: the new proxy refuses it.
TEST(HotRestart, AServerOfAnotherUidIsRefusedByTheNewProxy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a process as another uid";
  Options o;
  o.base_id = static_cast<uint32_t>(::getpid()) + 1;
  o.restart_epoch = 1;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    HotRestartServer fake;
    if (!fake.start(o.base_id, 0)) ::_exit(4);
    (void)!::write(ready[1], "x", 1);
    HotRestartServer::Sockets none;
    for (int i = 0; i < 300; ++i) {  // serves what it can for up to 3 s
      fake.poll(none, 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::_exit(0);
  }
  char x;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  auto h = take_over(o, 4242);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("runs as uid 65534"), std::string::npos)
      << h.error().message();
}

// The app in the pod (another uid) must not get the sidecar's listeners.
TEST_F(HotRestartTest, AProcessOfAnotherUidGetsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a process as another uid";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    auto h = take_over(opts_, 65534);
    ::_exit(h ? 0 : 1);
  }
  int st = 0;
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    EXPECT_NE(server_.poll(mine_, 0), HotRestartServer::Event::handed_over);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1);  // refused
}

}  // namespace
}  // namespace sm::proxy
