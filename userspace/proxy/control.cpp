// The control plane; see control.h.
#include "proxy/control.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "istio/parse.h"
#include "route/config_json.h"
#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

using Clock = consul::Clock;
using TimePoint = consul::TimePoint;

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return errno_error("read " + path);
  return s.str();
}

bool is_rule_file(const std::string& name) {
  return name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
}

std::string saved_table_path(const std::string& dir) {
  return dir + "/routes.json";
}

}  // namespace

Result<ControlOptions> ControlOptions::from(const Options& o, const char* consul_http_addr,
                                            const char* consul_http_token) {
  ControlOptions c;
  c.config_path = o.config_path;
  c.service_cluster = o.service_cluster;
  c.services = o.services;
  c.state_dir = o.state_dir;
  c.rules_path = o.rules_path;
  c.rules_kv_prefix = o.rules_kv_prefix;
  c.watch.wait = std::chrono::seconds(o.consul_wait_s);
  std::string url = o.consul_url;
  const char* field = "--consul";
  if (url.empty() && consul_http_addr && *consul_http_addr) {
    url = consul_http_addr;
    field = "CONSUL_HTTP_ADDR";
  }
  if (!url.empty()) {
    auto addr = consul::parse_consul_address(url, field);
    if (!addr) return addr.error();
    if (consul_http_token) addr->token = consul_http_token;
    c.consul = *addr;
  }
  if (!c.consul) {
    for (auto [flag, set] : {std::pair{"--rules", !c.rules_path.empty()},
                             std::pair{"--rules-kv", !c.rules_kv_prefix.empty()},
                             std::pair{"--services", !c.services.empty()},
                             std::pair{"--state-dir", !c.state_dir.empty()}})
      if (set)
        return plain_error(std::string(flag) +
                           ": needs Consul (--consul URL or CONSUL_HTTP_ADDR): the table is "
                           "built from its catalog");
  }
  return c;
}

Control::Control(Shared& shared, ControlOptions options)
    : shared_(shared), options_(std::move(options)), status_(shared.control) {
  if (!options_.service_cluster.empty()) {
    translate_options_.own_labels = istio::labels_from_service_cluster(options_.service_cluster);
    translate_options_.own_labels_known = true;
  }
  if (options_.consul) status_.set_consul_configured(options_.consul->authority());
}

Control::~Control() {
  stop();
}

// ---- start-up ----

Status Control::load_config_file() {
  auto cfg = route::load_route_config(options_.config_path);
  if (!cfg) return cfg.error();
  auto table = route::RouteTable::build(std::move(*cfg), shared_.cluster_states);
  if (!table) return plain_error(options_.config_path + ": " + table.error().message());
  shared_.routes.publish(*table);
  status_.publishes++;
  status_.set_source(ControlStatus::Source::config, options_.config_path);
  return {};
}

Status Control::load_initial() {
  if (!options_.consul) {
    if (options_.config_path.empty()) return {};
    return load_config_file();
  }
  if (!options_.rules_path.empty() && !load_rule_files(true))
    return plain_error("--rules " + options_.rules_path + ": " + last_logged_rule_error_);
  if (!options_.state_dir.empty()) {
    const std::string path = saved_table_path(options_.state_dir);
    if (::access(path.c_str(), R_OK) == 0) {
      auto cfg = route::load_route_config(path);
      auto table = cfg ? route::RouteTable::build(std::move(*cfg), shared_.cluster_states)
                       : Result<std::shared_ptr<const route::RouteTable>>(cfg.error());
      if (table) {
        shared_.routes.publish(*table);
        status_.publishes++;
        struct stat st {};
        ::stat(path.c_str(), &st);
        char when[32];
        std::tm tm{};
        ::gmtime_r(&st.st_mtime, &tm);
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        status_.set_source(ControlStatus::Source::state_dir, path + ", saved " + when);
        SM_INFO("control: serving the table saved in %s until Consul answers", path.c_str());
        return {};
      }
      SM_WARN("control: %s: %s (not used)", path.c_str(), table.error().message().c_str());
    }
  }
  if (!options_.config_path.empty()) {
    if (Status s = load_config_file(); !s) return s;
    SM_INFO("control: serving --config %s until Consul answers", options_.config_path.c_str());
  }
  return {};
}

void Control::start() {
  started_ = Clock::now();
  thread_ = std::thread([this] { run(); });
}

void Control::stop() {
  stop_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Control::reload() {
  reload_ = true;
  cv_.notify_all();
}

// ---- the thread ----

void Control::run() {
  if (!options_.consul) {
    // Static mode: only SIGHUP does anything.
    while (!stop_) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || reload_; });
      if (stop_) break;
      reload_ = false;
      lock.unlock();
      if (options_.config_path.empty()) continue;
      if (Status s = load_config_file(); !s)
        SM_WARN("reload: %s (keeping the previous route table)", s.error().message().c_str());
      else
        SM_INFO("reload: routes from %s", options_.config_path.c_str());
    }
    return;
  }
  watcher_ = std::make_unique<consul::ConsulWatcher>(*options_.consul, options_.watch);
  watcher_->on_error([this](const std::string& path, const std::string& error) {
    status_.consul_errors++;
    if (consul_ok_) {
      consul_ok_ = false;
      SM_WARN("consul %s: %s: %s; keeping the last good table, retrying with back-off",
              options_.consul->authority().c_str(), path.c_str(), error.c_str());
    }
    status_.set_consul_reachable(false, error);
  });
  start_watches();
  file_stamps_ = stamp_rule_files();
  while (!stop_) {
    // Wake for I/O, or when a pending rebuild becomes due (so changes do not wait a full tick).
    consul::Duration wait = milliseconds(50);
    if (dirty_) {
      const auto due = last_rebuild_ + rebuild_interval() - Clock::now();
      wait = std::clamp<consul::Duration>(due, milliseconds(1), wait);
    }
    watcher_->poll(wait);
    track_consul_health();
    const TimePoint now = Clock::now();
    if (reload_.exchange(false)) check_rule_files(true);
    if (now >= next_rules_check_) {
      check_rule_files(false);
      next_rules_check_ = now + options_.rules_poll;
    }
    maybe_rebuild();
    if (save_due_ && now >= next_save_) save_state();
  }
  if (save_due_) save_state();
  watcher_.reset();
}

// ---- rules from files ----

std::vector<Control::FileStamp> Control::stamp_rule_files() const {
  std::vector<FileStamp> out;
  if (options_.rules_path.empty()) return out;
  auto add = [&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    out.push_back({path, int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                   int64_t(st.st_size), uint64_t(st.st_ino)});
  };
  struct stat st {};
  if (::stat(options_.rules_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(options_.rules_path.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.' && is_rule_file(e->d_name)) names.emplace_back(e->d_name);
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) add(options_.rules_path + "/" + n);
  } else {
    add(options_.rules_path);
  }
  return out;
}

bool Control::load_rule_files(bool at_start) {
  std::vector<FileStamp> stamps = stamp_rule_files();
  struct stat st {};
  if (::stat(options_.rules_path.c_str(), &st) != 0) {
    last_logged_rule_error_ = "cannot be read: " + std::string(std::strerror(errno));
    status_.set_rule_error(options_.rules_path, last_logged_rule_error_);
    status_.rules_rejected++;
    return false;
  }
  istio::RuleSet rules;
  for (const FileStamp& f : stamps) {
    auto text = read_file(f.path);
    auto parsed = text ? istio::parse_rules(*text, f.path) : Result<istio::RuleSet>(text.error());
    if (!parsed) {
      const std::string error = parsed.error().message();
      status_.set_rule_error(options_.rules_path, error);
      status_.rules_rejected++;
      if (error != last_logged_rule_error_)
        SM_WARN("rules: %s; %s", error.c_str(),
                at_start ? "not starting" : "the previous rules keep serving");
      last_logged_rule_error_ = error;
      file_stamps_ = stamps;  // do not retry the same broken files every second
      return false;
    }
    rules.append(std::move(*parsed));
  }
  if (!at_start) {
    istio::RuleSet combined = rules;
    for (const auto& [key, r] : kv_rules_) combined.append(r);
    if (Status s = trial(combined); !s) {
      const std::string error = s.error().message();
      status_.set_rule_error(options_.rules_path, error);
      status_.rules_rejected++;
      if (error != last_logged_rule_error_)
        SM_WARN("rules %s: %s; the previous rules keep serving", options_.rules_path.c_str(),
                error.c_str());
      last_logged_rule_error_ = error;
      file_stamps_ = stamps;
      return false;
    }
  }
  file_rules_ = std::move(rules);
  file_stamps_ = stamps;
  last_logged_rule_error_.clear();
  status_.set_rule_error(options_.rules_path, "");
  SM_INFO("rules: %zu VirtualService and %zu DestinationRule documents from %s",
          file_rules_.virtual_services.size(), file_rules_.destination_rules.size(),
          options_.rules_path.c_str());
  return true;
}

void Control::check_rule_files(bool force) {
  if (options_.rules_path.empty()) return;
  if (!force && stamp_rule_files() == file_stamps_) return;
  if (load_rule_files(false)) dirty_ = true;
}

// ---- Consul ----

void Control::start_watches() {
  if (options_.services.empty()) {
    watcher_->add("/v1/catalog/services", false,
                  [this](const consul::HttpResponse& r, TimePoint t) { on_catalog(r, t); });
  } else {
    catalog_answered_ = true;
    for (const std::string& s : options_.services) add_service(s);
  }
  if (!options_.rules_kv_prefix.empty()) {
    watcher_->add("/v1/kv/" + consul::escape_path(options_.rules_kv_prefix) + "?recurse", true,
                  [this](const consul::HttpResponse& r, TimePoint t) { on_kv(r, t); });
  }
}

void Control::add_service(const std::string& name) {
  ServiceWatch& w = services_[name];
  w.watch = watcher_->add(
      "/v1/health/service/" + consul::escape_path(name) + "?passing", false,
      [this, name](const consul::HttpResponse& r, TimePoint t) { on_health(name, r, t); });
}

void Control::on_catalog(const consul::HttpResponse& r, TimePoint received) {
  auto names = consul::parse_catalog_services(r.body);
  if (!names) {
    SM_WARN("consul: catalog/services: %s", names.error().message().c_str());
    return;
  }
  bool changed = !catalog_answered_;  // the first answer makes a table, even an empty one
  catalog_answered_ = true;
  for (const auto& [name, tags] : *names) {
    if (services_.count(name)) continue;
    add_service(name);
  }
  for (auto it = services_.begin(); it != services_.end();) {
    if (names->count(it->first)) {
      ++it;
      continue;
    }
    watcher_->remove(it->second.watch);
    catalog_.erase(it->first);
    it = services_.erase(it);
    changed = true;
  }
  if (changed) {
    dirty_ = true;
    pending_.push_back(received);
  }
}

void Control::on_health(const std::string& service, const consul::HttpResponse& r,
                        TimePoint received) {
  auto it = services_.find(service);
  if (it == services_.end()) return;
  std::vector<std::string> skipped;
  auto instances = consul::parse_health_service(r.body, &skipped);
  if (!instances) {
    SM_WARN("consul: health/service/%s: %s", service.c_str(), instances.error().message().c_str());
    return;
  }
  for (const std::string& s : skipped) SM_DEBUG("consul: %s: %s", service.c_str(), s.c_str());
  ServiceWatch& w = it->second;
  const bool first = !w.answered;
  w.answered = true;
  auto known = catalog_.find(service);
  const bool same = known != catalog_.end() ? known->second.instances == *instances
                                            : instances->empty() && w.port == 0;
  if (!first && same) return;  // the index moved, the content did not
  if (uint16_t p = istio::service_port(*instances)) w.port = p;
  // A service without a port yet (never had an instance) has no cluster to name.
  if (w.port) catalog_[service] = {w.port, std::move(*instances)};
  dirty_ = true;
  pending_.push_back(received);
}

void Control::on_kv(const consul::HttpResponse& r, TimePoint received) {
  kv_answered_ = true;
  std::vector<consul::KvEntry> entries;
  if (r.status != 404) {
    auto parsed = consul::parse_kv_entries(r.body);
    if (!parsed) {
      SM_WARN("consul: kv %s: %s", options_.rules_kv_prefix.c_str(),
              parsed.error().message().c_str());
      return;
    }
    entries = std::move(*parsed);
  }
  std::map<std::string, std::string> values;
  for (consul::KvEntry& e : entries)
    if (!e.key.ends_with("/") && !e.value.empty()) values[e.key] = std::move(e.value);
  if (values == kv_values_) return;
  // Each key is a source of its own: a bad key is refused alone, its previous rules kept.
  std::map<std::string, istio::RuleSet> next;
  bool changed = false;
  for (const auto& [key, value] : values) {
    auto old = kv_values_.find(key);
    if (old != kv_values_.end() && old->second == value) {
      if (auto k = kv_rules_.find(key); k != kv_rules_.end()) next[key] = k->second;
      continue;
    }
    const std::string source = "kv " + key;
    auto parsed = istio::parse_rules(value, source);
    Status ok = parsed ? Status{} : Status(parsed.error());
    if (ok) {
      istio::RuleSet combined = file_rules_;
      for (const auto& [k, r2] : next) combined.append(r2);
      combined.append(*parsed);
      ok = trial(combined);
    }
    if (!ok) {
      status_.set_rule_error(source, ok.error().message());
      status_.rules_rejected++;
      SM_WARN("rules: %s; the previous rules of this key keep serving",
              ok.error().message().c_str());
      if (auto k = kv_rules_.find(key); k != kv_rules_.end()) next[key] = k->second;
      continue;
    }
    status_.set_rule_error(source, "");
    next[key] = std::move(*parsed);
    changed = true;
  }
  for (const auto& [key, r2] : kv_rules_)
    if (!values.count(key)) {
      changed = true;  // a deleted key takes its rules with it
      status_.set_rule_error("kv " + key, "");
    }
  kv_values_ = std::move(values);
  kv_rules_ = std::move(next);
  if (changed) {
    dirty_ = true;
    pending_.push_back(received);
  }
}

void Control::track_consul_health() {
  const size_t failing = watcher_->failing();
  status_.set_watches(watcher_->size(), failing);
  if (failing == 0 && watcher_->answered() > 0 && !consul_ok_) {
    consul_ok_ = true;
    SM_INFO("consul %s: answering again", options_.consul->authority().c_str());
  }
  if (failing == 0 && watcher_->answered() > 0) status_.set_consul_reachable(true, "");
}

bool Control::consul_synced() const {
  if (!catalog_answered_) return false;
  if (!options_.rules_kv_prefix.empty() && !kv_answered_) return false;
  return std::all_of(services_.begin(), services_.end(),
                     [](const auto& kv) { return kv.second.answered; });
}

// ---- rebuild ----

istio::RuleSet Control::all_rules() const {
  istio::RuleSet r = file_rules_;
  for (const auto& [key, rules] : kv_rules_) r.append(rules);
  return r;
}

Status Control::trial(const istio::RuleSet& rules) const {
  istio::Translation t = istio::translate(catalog_, rules, translate_options_);
  if (Status s = route::validate_route_config(t.config); !s)
    return plain_error("the rules give an invalid route table: " + s.error().message());
  return {};
}

void Control::maybe_rebuild() {
  if (!dirty_) return;
  const TimePoint now = Clock::now();
  // The first table waits for every watch's first answer (a partial catalog would send
  // traffic to "no route"), but not forever.
  if (!consul_synced() && now - started_ < options_.initial_sync_timeout) return;
  if (!catalog_answered_) return;
  if (now - last_rebuild_ < rebuild_interval()) return;
  rebuild();
}

consul::Duration Control::rebuild_interval() const {
  return std::max<consul::Duration>(options_.min_rebuild_interval, 2 * last_build_time_);
}

void Control::rebuild() {
  const TimePoint begin = Clock::now();
  last_rebuild_ = begin;
  dirty_ = false;
  istio::RuleSet rules = all_rules();
  istio::Translation t = istio::translate(catalog_, rules, translate_options_);
  rule_sources_.clear();
  for (const auto& f : file_stamps_) rule_sources_.push_back(f.path);
  for (const auto& [key, r] : kv_rules_) rule_sources_.push_back("kv " + key);
  status_.set_rules(rule_sources_, rules.unsupported, t.notes);
  status_.rebuilds++;
  auto current = shared_.routes.current();
  if (current && current->config() == t.config) {
    status_.rebuilds_unchanged++;
    pending_.clear();
    if (consul_synced()) status_.set_source(ControlStatus::Source::consul, "");
    return;
  }
  auto table = route::RouteTable::build(std::move(t.config), shared_.cluster_states);
  if (!table) {
    SM_ERROR("control: the new route table is invalid, keeping the previous one: %s",
             table.error().message().c_str());
    pending_.clear();
    return;
  }
  shared_.routes.publish(*table);
  const TimePoint done = Clock::now();
  last_build_time_ = done - begin;
  const auto build_us = std::chrono::duration_cast<std::chrono::microseconds>(done - begin).count();
  status_.rebuild_time.record_us(static_cast<uint64_t>(build_us));
  status_.publishes++;
  std::string waits;  // for the debug log: each change's receive -> publish, microseconds
  // The first table's changes waited for every watch's first answer: start-up, not
  // propagation, so they are not counted.
  if (!first_published_) pending_.clear();
  for (TimePoint t0 : pending_) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - t0).count();
    status_.consul_propagation.record_us(static_cast<uint64_t>(us));
    if (!waits.empty()) waits += ',';
    waits += std::to_string(us);
  }
  pending_.clear();
  status_.set_source(ControlStatus::Source::consul, "");
  size_t endpoints = 0;
  for (const route::Cluster& c : (*table)->clusters()) endpoints += c.endpoint_count();
  if (!first_published_) {
    first_published_ = true;
    SM_INFO(
        "control: first table from Consul %lld ms after start: %zu services, %zu clusters, "
        "%zu endpoints, built in %lld us",
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(done - started_).count()),
        (*table)->virtual_hosts().size(), (*table)->clusters().size(), endpoints,
        static_cast<long long>(build_us));
  } else {
    SM_DEBUG(
        "control: table %llu published: %zu services, %zu clusters, %zu endpoints, built in "
        "%lld us; changes waited %s us",
        static_cast<unsigned long long>((*table)->id()), (*table)->virtual_hosts().size(),
        (*table)->clusters().size(), endpoints, static_cast<long long>(build_us),
        waits.empty() ? "-" : waits.c_str());
  }
  if (!options_.state_dir.empty()) save_due_ = true;
}

void Control::save_state() {
  save_due_ = false;
  next_save_ = Clock::now() + options_.save_interval;
  auto table = shared_.routes.current();
  if (!table || options_.state_dir.empty()) return;
  const std::string path = saved_table_path(options_.state_dir);
  const std::string tmp = path + ".tmp";
  const std::string text = route::dump_route_config(table->config());
  // Written aside and renamed, so a crash never leaves half a table to start from.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    SM_WARN("control: --state-dir: open %s: %s", tmp.c_str(), std::strerror(errno));
    return;
  }
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  const bool ok = off == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    SM_WARN("control: --state-dir: writing %s failed: %s", path.c_str(), std::strerror(errno));
    ::unlink(tmp.c_str());
    return;
  }
  status_.set_saved(path);
}

}  // namespace sm::proxy
