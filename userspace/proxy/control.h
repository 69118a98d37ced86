// The control plane inside the sidecar: sources -> translate -> RouteTable::build -> publish.
// Sources are Consul (blocking-query watches on the catalog, on each service's passing
// instances, and on a KV prefix of Istio rules) and rule files (--rules FILE|DIR, re-read when
// they change and on SIGHUP). One thread runs it all, off the data path; workers only ever see
// the published immutable table. The last good table is kept when Consul goes away or a rule
// is refused, saved in --state-dir, and served from there (or from --config) when Consul is
// unreachable at start.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "consul/address.h"
#include "consul/catalog.h"
#include "consul/watcher.h"
#include "istio/rules.h"
#include "istio/translate.h"
#include "proxy/shared.h"

namespace sm::proxy {

using std::chrono::milliseconds;

struct ControlOptions {
  std::string config_path;                      // --config: static table, or the fallback
  std::optional<consul::ConsulAddress> consul;  // --consul / CONSUL_HTTP_ADDR (+ token)
  std::string service_cluster;                  // --service-cluster: this sidecar's service
  std::vector<std::string> services;            // --services: watch only these (default all)
  std::string state_dir;                        // --state-dir: the last good table
  std::string rules_path;                       // --rules FILE|DIR
  std::string rules_kv_prefix;                  // --rules-kv PREFIX
  consul::WatchOptions watch;
  // Coalesces churn: a rebuild waits this long after the previous one, or twice as long as
  // the previous one took, whichever is longer (so rebuilding never takes more than about
  // half of the control thread's time, however fast Consul changes).
  milliseconds min_rebuild_interval{20};
  milliseconds initial_sync_timeout{3000};  // first Consul table even if a watch is slow
  milliseconds rules_poll{1000};            // how often rule files are checked for changes
  milliseconds save_interval{1000};         // --state-dir is rewritten at most this often

  // From parsed flags and the environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN).
  static Result<ControlOptions> from(const Options& o, const char* consul_http_addr,
                                     const char* consul_http_token);
};

class Control {
 public:
  Control(Shared& shared, ControlOptions options);
  ~Control();
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;

  // Before the workers start: loads --rules (a refusal here is fatal: nothing to keep) and
  // publishes the first table: --config when Consul is not used, else the one saved in
  // --state-dir, else --config, else none until Consul answers.
  Status load_initial();
  // Starts the control thread (watches, rule files, rebuilds, saving).
  void start();
  void stop();
  // SIGHUP: re-read --config (static mode) or the rule files, now.
  void reload();

 private:
  struct ServiceWatch {
    uint64_t watch = 0;
    uint16_t port = 0;  // last known service port (kept while the service has no instance)
    bool answered = false;
  };
  struct FileStamp {
    std::string path;
    int64_t mtime_ns = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    friend bool operator==(const FileStamp&, const FileStamp&) = default;
  };

  void run();
  // Static mode (no Consul): --config only.
  Status load_config_file();
  // --rules: every rule file; false (and the status says why) when one is refused.
  bool load_rule_files(bool at_start);
  std::vector<FileStamp> stamp_rule_files() const;
  void check_rule_files(bool force);

  // Consul.
  void start_watches();
  void on_catalog(const consul::HttpResponse& r, consul::TimePoint received);
  void on_health(const std::string& service, const consul::HttpResponse& r,
                 consul::TimePoint received);
  void on_kv(const consul::HttpResponse& r, consul::TimePoint received);
  void add_service(const std::string& name);
  void track_consul_health();
  bool consul_synced() const;

  // Rebuild and publish.
  istio::RuleSet all_rules() const;
  // Whether `rules` give a valid table with the current catalog (else the reason).
  Status trial(const istio::RuleSet& rules) const;
  void maybe_rebuild();
  consul::Duration rebuild_interval() const;
  void rebuild();
  void save_state();

  Shared& shared_;
  ControlOptions options_;
  ControlStatus& status_;
  istio::TranslateOptions translate_options_;
  std::unique_ptr<consul::ConsulWatcher> watcher_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reload_{false};
  std::mutex mu_;  // for the static-mode wait
  std::condition_variable cv_;

  // Inputs (control thread only).
  std::map<std::string, ServiceWatch> services_;
  // What the translation reads: every answered service with a known port, kept up to date
  // change by change (a rebuild copies nothing of it).
  istio::MeshCatalog catalog_;
  bool catalog_answered_ = false;
  bool kv_answered_ = false;
  istio::RuleSet file_rules_;
  std::vector<FileStamp> file_stamps_;
  std::map<std::string, istio::RuleSet> kv_rules_;  // by key: the last good rules of each
  std::map<std::string, std::string> kv_values_;    // by key: the value they came from
  std::vector<std::string> rule_sources_;

  // Rebuild state.
  bool dirty_ = false;
  std::vector<consul::TimePoint> pending_;  // when each unpublished Consul change arrived
  consul::TimePoint started_{};
  consul::TimePoint last_rebuild_{};
  consul::Duration last_build_time_{0};
  consul::TimePoint next_rules_check_{};
  consul::TimePoint next_save_{};
  bool save_due_ = false;
  bool consul_ok_ = true;  // for logging the transitions once
  bool first_published_ = false;
  std::string last_logged_rule_error_;
};

}  // namespace sm::proxy
