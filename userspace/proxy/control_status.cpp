// Control-plane status; see control_status.h.
#include "proxy/control_status.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace sm::proxy {
namespace {

std::string now_utc() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* source_name(ControlStatus::Source s) {
  switch (s) {
    case ControlStatus::Source::none:
      return "none";
    case ControlStatus::Source::config:
      return "config";
    case ControlStatus::Source::state_dir:
      return "state-dir";
    case ControlStatus::Source::consul:
      return "consul";
  }
  return "none";
}

}  // namespace

void ControlStatus::set_consul_configured(std::string address) {
  std::lock_guard lock(mu_);
  consul_address_ = std::move(address);
}

void ControlStatus::set_source(Source s, std::string detail) {
  std::lock_guard lock(mu_);
  source_ = s;
  source_detail_ = std::move(detail);
}

void ControlStatus::set_consul_reachable(bool reachable, const std::string& error) {
  std::lock_guard lock(mu_);
  if (reachable) {
    consul_answered_ = true;
    consul_down_since_.clear();
    consul_error_.clear();
  } else {
    if (consul_reachable_ || consul_down_since_.empty()) consul_down_since_ = now_utc();
    consul_error_ = error;
  }
  consul_reachable_ = reachable;
}

void ControlStatus::set_watches(size_t watches, size_t failing) {
  std::lock_guard lock(mu_);
  watches_ = watches;
  failing_ = failing;
}

void ControlStatus::set_rules(std::vector<std::string> sources,
                              std::vector<std::string> unsupported,
                              std::vector<std::string> notes) {
  std::lock_guard lock(mu_);
  rule_sources_ = std::move(sources);
  unsupported_ = std::move(unsupported);
  notes_ = std::move(notes);
  unsupported_fields.store(unsupported_.size(), std::memory_order_relaxed);
}

void ControlStatus::set_rule_error(const std::string& source, const std::string& error) {
  std::lock_guard lock(mu_);
  std::erase_if(rule_errors_, [&](const auto& e) { return e.first == source; });
  if (!error.empty()) rule_errors_.emplace_back(source, error);
}

void ControlStatus::set_saved(std::string path) {
  std::lock_guard lock(mu_);
  saved_path_ = std::move(path);
  saved_at_ = now_utc();
}

bool ControlStatus::consul() const {
  std::lock_guard lock(mu_);
  return !consul_address_.empty();
}

bool ControlStatus::has_table() const {
  std::lock_guard lock(mu_);
  return source_ != Source::none;
}

std::string ControlStatus::ready_note() const {
  std::lock_guard lock(mu_);
  std::string out;
  if (!consul_address_.empty() && !consul_reachable_) {
    out += "consul " + consul_address_ + ": unreachable";
    if (!consul_down_since_.empty()) out += " since " + consul_down_since_;
    if (!consul_error_.empty()) out += " (" + consul_error_ + ")";
    out += "\n";
  }
  if (source_ == Source::state_dir)
    out += "serving the last good table saved in --state-dir (" + source_detail_ + ")\n";
  else if (source_ == Source::config && !consul_address_.empty())
    out += "serving the table from --config (" + source_detail_ + ") until Consul answers\n";
  else if (source_ == Source::consul && !consul_reachable_)
    out += "serving the last good table from Consul\n";
  for (const auto& [source, error] : rule_errors_)
    out += "rules " + source + " refused (previous rules kept): " + error + "\n";
  return out;
}

std::string ControlStatus::dump_json() const {
  using ojson = nlohmann::ordered_json;
  std::lock_guard lock(mu_);
  ojson j;
  j["source"] = source_name(source_);
  if (!source_detail_.empty()) j["source_detail"] = source_detail_;
  if (!consul_address_.empty()) {
    ojson& c = j["consul"];
    c["address"] = "http://" + consul_address_;
    c["reachable"] = consul_reachable_;
    if (!consul_down_since_.empty()) c["unreachable_since"] = consul_down_since_;
    if (!consul_error_.empty()) c["last_error"] = consul_error_;
    c["watches"] = watches_;
    c["watches_failing"] = failing_;
  }
  if (!saved_path_.empty()) j["state_saved"] = {{"path", saved_path_}, {"at", saved_at_}};
  j["rules"] = rule_sources_;
  ojson& errors = j["rules_rejected"] = ojson::array();
  for (const auto& [source, error] : rule_errors_)
    errors.push_back({{"source", source}, {"error", error}});
  j["unsupported"] = unsupported_;
  j["notes"] = notes_;
  return j.dump(2);
}

std::vector<std::pair<std::string, uint64_t>> ControlStatus::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  std::vector<std::pair<std::string, uint64_t>> out = {
      {"control_plane.rebuilds", v(rebuilds)},
      {"control_plane.rebuilds_unchanged", v(rebuilds_unchanged)},
      {"control_plane.publishes", v(publishes)},
      {"control_plane.consul_errors", v(consul_errors)},
      {"control_plane.rules_rejected", v(rules_rejected)},
      {"control_plane.unsupported_fields", v(unsupported_fields)},
  };
  std::lock_guard lock(mu_);
  out.emplace_back("control_plane.consul_watches", watches_);
  out.emplace_back("control_plane.consul_watches_failing", failing_);
  return out;
}

}  // namespace sm::proxy
