// The JSON-lines access log. Workers format lines into their own buffer and hand whole
// batches over without ever blocking: a writer thread does the write(2)s, and when it
// falls behind (a stalled stdout, a full disk, a FIFO nobody reads) lines are dropped and
// counted instead of freezing the data plane: batches beyond the queue's bound at once,
// and what a reader took nothing of for a second.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "sockmesh/result.h"

namespace sm::proxy {

class AccessLog {
 public:
  // At most this much waits for the writer; more is dropped.
  static constexpr size_t kMaxQueuedBytes = 4 << 20;

  AccessLog() = default;
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  ~AccessLog();

  // "" disables; "-" is stdout. A path is opened with the caller's identity (call it after
  // dropping privileges), never through a symlink, and must be a regular file, a FIFO or a
  // character device; it is created (0644) when absent.
  Status open(const std::string& path);
  bool enabled() const { return fd_ >= 0; }
  // Takes the lines in `batch` (whole lines, each ending in '\n'); leaves `batch` empty.
  void submit(std::string& batch);
  // Writes what is queued (for up to `timeout_ms`), then stops the writer.
  void close(int timeout_ms = 1000);

  uint64_t written_lines() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped_lines() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void write_loop();
  // Writes `s`; gives up (returns how much it wrote) when the reader takes nothing for
  // kStallMs, or when stopping takes too long.
  size_t write_all(const std::string& s);
  static constexpr int64_t kStallMs = 1000;

  int fd_ = -1;
  bool owned_ = false;
  bool chunked_ = false;  // a pipe or a device: write at most PIPE_BUF after poll() says so
  bool stalled_ = false;  // the writer's: the reader took nothing for kStallMs
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::deque<std::string> spare_;  // emptied strings, reused by submit()
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  int64_t stop_deadline_ms_ = 0;
  std::thread writer_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace sm::proxy
