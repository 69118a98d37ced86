-- wrk script for the mesh bench: one machine-readable line with what wrk measured.
-- wrk keeps every request's latency in a histogram (microseconds), so p99.9 comes from the
-- same data as --latency's p50/p99. A request header set with -H (Connection: close) is
-- kept: wrk then reconnects after each response.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SM_WRK {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
