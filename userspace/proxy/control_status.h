// What the control plane says about itself, for the admin API: where the table in use came
// from (Consul, --state-dir, --config), whether Consul answers, which rules were refused and
// why, which rule fields are not supported, and consul_propagation_ms. Written by the control
// thread, read by the admin thread: a mutex, never touched by workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/proxy_stats.h"

namespace sm::proxy {

class ControlStatus {
 public:
  enum class Source : uint8_t { none, config, state_dir, consul };

  // ---- written by the control plane ----
  void set_consul_configured(std::string address);
  void set_source(Source s, std::string detail);
  // Consul answers every watch (true) or not (false, with the latest error).
  void set_consul_reachable(bool reachable, const std::string& error);
  void set_watches(size_t watches, size_t failing);
  void set_rules(std::vector<std::string> sources, std::vector<std::string> unsupported,
                 std::vector<std::string> notes);
  // A rule source refused (its old rules keep serving); "" clears it.
  void set_rule_error(const std::string& source, const std::string& error);
  void set_saved(std::string path);

  // Counters (relaxed atomics; the control thread bumps, /stats reads).
  std::atomic<uint64_t> rebuilds{0};            // tables built from new inputs
  std::atomic<uint64_t> rebuilds_unchanged{0};  // inputs changed, table did not: not published
  std::atomic<uint64_t> publishes{0};
  std::atomic<uint64_t> consul_errors{0};       // failed Consul requests
  std::atomic<uint64_t> rules_rejected{0};      // rule sources refused
  std::atomic<uint64_t> unsupported_fields{0};  // gauge: reported now
  // Consul answer with a new index received -> the table built from it published.
  Histogram consul_propagation;
  // Translate + RouteTable::build + publish, per rebuild that produced a new table.
  Histogram rebuild_time;

  // ---- read by the admin ----
  bool consul() const;  // a control plane with Consul runs
  bool has_table() const;
  // Appended to /ready: empty when all is well, else what is degraded.
  std::string ready_note() const;
  // The "control_plane" object of /config_dump, as JSON text.
  std::string dump_json() const;
  // (name, value) for /stats: control_plane.<name>.
  std::vector<std::pair<std::string, uint64_t>> counters() const;

 private:
  mutable std::mutex mu_;
  std::string consul_address_;  // "" when Consul is not configured
  Source source_ = Source::none;
  std::string source_detail_;
  bool consul_reachable_ = false;
  bool consul_answered_ = false;
  std::string consul_error_;
  std::string consul_down_since_;
  size_t watches_ = 0, failing_ = 0;
  std::vector<std::string> rule_sources_, unsupported_, notes_;
  std::vector<std::pair<std::string, std::string>> rule_errors_;
  std::string saved_path_, saved_at_;
};

}  // namespace sm::proxy
