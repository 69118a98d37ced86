// The span reporter; see reporter.h.
#include "tracing/reporter.h"

#include "sockmesh/log.h"
#include "tracing/zipkin_json.h"

namespace sm::tracing {

Reporter::Reporter(ReporterConfig config) : config_(std::move(config)) {
  queue_.reserve(config_.max_batch);
  thread_ = std::thread([this] { run(); });
}

Reporter::~Reporter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Reporter::report(Span&& span) {
  bool full_batch = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= config_.max_queued) {
      stats_.spans_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(span));
    full_batch = queue_.size() == config_.max_batch;
  }
  if (full_batch) wake_.notify_one();
}

size_t Reporter::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void Reporter::run() {
  std::vector<Span> batch;
  auto next_flush = std::chrono::steady_clock::now() + config_.flush_interval;
  for (;;) {
    bool timer = false, stop = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next_flush,
                       [&] { return stopping_ || queue_.size() >= config_.max_batch; });
      stop = stopping_;
      timer = queue_.size() < config_.max_batch;
      // Take at most one batch; the rest stays queued (and keeps counting against the bound).
      size_t take = std::min(queue_.size(), config_.max_batch);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(take)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(take));
    }
    if (!batch.empty()) {
      if (timer) stats_.timer_flushed.fetch_add(1, std::memory_order_relaxed);
      send(batch);
      batch.clear();
    }
    if (stop) {
      std::lock_guard lock(mu_);
      if (!queue_.empty()) {
        // Shutting down: whatever is left after the last attempt is not waited for.
        stats_.spans_dropped.fetch_add(queue_.size(), std::memory_order_relaxed);
        queue_.clear();
      }
      return;
    }
    if (timer) next_flush = std::chrono::steady_clock::now() + config_.flush_interval;
  }
}

void Reporter::send(std::vector<Span>& batch) {
  const std::string body = encode_spans(batch);
  auto status = http_post(config_.collector, config_.path, body, config_.timeouts);
  if (status && *status >= 200 && *status < 300) {
    stats_.reports_sent.fetch_add(1, std::memory_order_relaxed);
    stats_.spans_sent.fetch_add(batch.size(), std::memory_order_relaxed);
    if (failing_)
      SM_INFO("zipkin %s:%u accepts spans again", config_.collector.host.c_str(),
              config_.collector.port);
    failing_ = false;
    return;
  }
  stats_.spans_dropped.fetch_add(batch.size(), std::memory_order_relaxed);
  (status ? stats_.reports_dropped : stats_.reports_failed).fetch_add(1, std::memory_order_relaxed);
  if (failing_) return;  // one warning per outage; the counters tell the rest
  failing_ = true;
  const std::string why = status ? "answered " + std::to_string(*status) : status.error().message();
  SM_WARN("zipkin %s:%u: %s; %zu spans dropped (until it recovers, drops are only counted)",
          config_.collector.host.c_str(), config_.collector.port, why.c_str(), batch.size());
}

}  // namespace sm::tracing
