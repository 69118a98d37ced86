// Reporter: hands finished spans to a Zipkin collector off the data path. report() only
// appends to a bounded queue (a mutex held for a push, never across I/O); a background
// thread batches the queue and POSTs it to /api/v2/spans. When the collector is slow or
// down, the queue fills and further spans are dropped and counted: the caller never waits.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tracing/http_post.h"
#include "tracing/span.h"

namespace sm::tracing {

// Where finished spans go: the Reporter, or a test's recorder.
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void report(Span&& span) = 0;
};

struct ReporterConfig {
  HostPort collector;  // --zipkin-address
  std::string path = "/api/v2/spans";
  size_t max_queued = 4096;                        // spans waiting; more are dropped
  size_t max_batch = 256;                          // spans per POST
  std::chrono::milliseconds flush_interval{1000};  // a partial batch waits at most this
  PostTimeouts timeouts;
};

// Envoy's tracing.zipkin.* names where one exists.
struct ReporterStats {
  std::atomic<uint64_t> spans_sent{0};       // in a batch the collector accepted (2xx)
  std::atomic<uint64_t> spans_dropped{0};    // queue full, or their batch failed
  std::atomic<uint64_t> reports_sent{0};     // POSTs answered 2xx
  std::atomic<uint64_t> reports_dropped{0};  // POSTs answered otherwise
  std::atomic<uint64_t> reports_failed{0};   // POSTs that got no answer (connect, timeout)
  std::atomic<uint64_t> timer_flushed{0};    // batches sent because the interval passed
};

class Reporter final : public SpanSink {
 public:
  explicit Reporter(ReporterConfig config);
  // Sends what is queued (one last attempt, within the timeouts), then stops the thread.
  ~Reporter() override;
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  void report(Span&& span) override;
  const ReporterStats& stats() const { return stats_; }
  // Spans waiting in the queue now.
  size_t queued() const;
  const ReporterConfig& config() const { return config_; }

 private:
  void run();
  void send(std::vector<Span>& batch);

  const ReporterConfig config_;
  ReporterStats stats_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Span> queue_;
  bool stopping_ = false;
  bool failing_ = false;  // the reporter thread's: the last POST failed (log once per outage)
  std::thread thread_;
};

}  // namespace sm::tracing
