// `sockmesh-loader agent`: the node agent a DaemonSet runs. It installs at start (the same
// idempotent install as `install`), then every pass re-checks the install (map pins,
// link pins, links still attached), repairs what is missing, unenrolls workloads whose
// network namespace is gone, and rewrites a status file for the kubelet's probes. On
// SIGTERM/SIGINT it returns and leaves every program attached (the links are pinned).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mesh.h"

namespace sm {

struct AgentOptions {
  InstallOptions install;
  // First line "ready" when installed and healthy, else "starting" / "degraded: <why>";
  // rewritten atomically (write, rename) after every pass.
  std::string status_file = "/run/sockmesh/agent.status";
  int interval_seconds = 5;
  // Runs after the install is checked on every pass (CNI chaining); its error makes the
  // pass degraded. Empty: nothing.
  std::function<Status(std::vector<std::string>& events)> extra;
};

// What one pass found and did.
struct AgentPass {
  bool ready = false;
  std::string reason;               // why not ready
  std::vector<std::string> events;  // repairs and collections, for the log and the file
  size_t workloads = 0;
};

// The problems of an install at `pins`: unpinned maps, missing or detached links. Empty
// when healthy.
std::vector<std::string> inspect_install(const PinLayout& pins);

// One health pass: `first` installs unconditionally (idempotent), later passes only when
// inspect_install() finds a problem.
AgentPass agent_pass(const AgentOptions& opts, bool first);

// Writes the status file atomically.
Status write_agent_status(const std::string& path, const std::string& first_line,
                          const std::vector<std::string>& details);

// Runs passes every interval until SIGTERM or SIGINT (blocked by the caller's thread
// here); returns the exit code.
int run_agent(const AgentOptions& opts);

}  // namespace sm
