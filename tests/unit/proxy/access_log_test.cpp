// access_log.h: workers never block on the log (a stalled reader costs dropped lines, not
// a frozen data plane) and the file is opened safely.
#include "proxy/access_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sm::proxy {
namespace {

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sm-utest-accesslog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(AccessLogTest, WritesEveryLineOfEveryBatchInOrder) {
  const std::string path = dir_ + "/access.log";
  std::string expect;
  {
    AccessLog log;
    ASSERT_TRUE(log.open(path));
    for (int b = 0; b < 50; ++b) {
      std::string batch;
      for (int i = 0; i < 20; ++i) batch += "{\"n\":" + std::to_string(b * 20 + i) + "}\n";
      expect += batch;
      log.submit(batch);
      EXPECT_TRUE(batch.empty());
    }
    log.close();
    EXPECT_EQ(log.written_lines(), 1000u);
    EXPECT_EQ(log.dropped_lines(), 0u);
  }
  std::ifstream in(path);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), expect);
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_uid, ::geteuid()) << "created by whoever opens it (after the privilege drop)";
}

TEST_F(AccessLogTest, ASymlinkIsRefusedAndNothingIsWrittenThroughIt) {
  const std::string target = dir_ + "/precious";
  std::ofstream(target) << "keep\n";
  const std::string link = dir_ + "/access.log";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  AccessLog log;
  Status s = log.open(link);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "--access-log " + link + ": is a symbolic link (refused)");
  std::ifstream in(target);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "keep\n");
}

TEST_F(AccessLogTest, ADirectoryIsRefused) {
  AccessLog log;
  Status s = log.open(dir_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("--access-log " + dir_), std::string::npos);
}

TEST_F(AccessLogTest, AStalledReaderCostsDroppedLinesNeverABlockedWorker) {
  const std::string fifo = dir_ + "/access.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // never reads
  ASSERT_GE(reader, 0);
  AccessLog log;
  ASSERT_TRUE(log.open(fifo));
  const std::string line(200, 'x');
  auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < 2000; ++b) {  // 40 MB: ten times the queue, hundreds of pipes
    std::string batch;
    for (int i = 0; i < 100; ++i) batch += line + "\n";
    log.submit(batch);
  }
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(ms, 2000) << "submit() blocked";
  EXPECT_GT(log.dropped_lines(), 100'000u);
  t0 = std::chrono::steady_clock::now();
  log.close(200);  // gives up on what the reader never takes
  ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
           .count();
  EXPECT_LT(ms, 2000) << "shutdown waited for a reader that never reads";
  EXPECT_EQ(log.written_lines() + log.dropped_lines(), 200'000u) << "every line counted once";
  ::close(reader);
}

// Under the queue's bound too: what a reader takes nothing of for a second is dropped (and
// counted) then, not at shutdown; what it did take is whole lines.
TEST_F(AccessLogTest, AReaderThatTakesNothingForASecondCostsWholeLinesPromptly) {
  const std::string fifo = dir_ + "/slow.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  AccessLog log;
  ASSERT_TRUE(log.open(fifo));
  const std::string line = "{\"path\":\"" + std::string(90, 'p') + "\"}\n";  // 100 bytes
  for (int b = 0; b < 10; ++b) {  // 200 KB: three times a pipe, far under the queue bound
    std::string batch;
    for (int i = 0; i < 200; ++i) batch += line;
    log.submit(batch);
  }
  uint64_t dropped = 0;
  for (int i = 0; i < 60 && log.written_lines() + log.dropped_lines() < 2000; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  dropped = log.dropped_lines();
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(log.written_lines() + dropped, 2000u) << "every line counted, without a shutdown";
  std::string got;
  char buf[65536];
  for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;)
    got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(got.size(), log.written_lines() * line.size()) << "only whole lines reach the reader";
  ::close(reader);
}

TEST_F(AccessLogTest, AFifoWithoutReaderIsAClearErrorNotAHang) {
  const std::string fifo = dir_ + "/nobody.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  AccessLog log;
  Status s = log.open(fifo);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "--access-log " + fifo + ": a FIFO with no reader");
}

}  // namespace
}  // namespace sm::proxy
