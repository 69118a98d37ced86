// Chaining sockmesh-cni into a node's CNI configuration, as Istio's install-cni does:
// the plugin binary is copied into the CNI bin dir, and an entry for it is appended to
// the plugins of the first config file (by name) in the CNI conf dir; a single-plugin
// .conf is turned into a .conflist. Uninstall removes the entry and the binary again.
#pragma once

#include <string>
#include <vector>

#include "netconf.h"

namespace sm::cni {

// Appends or replaces our entry in a conflist; false when it already matched.
bool chain_into(Json& conflist, const Json& entry);
// Removes our entry; false when there was none.
bool unchain(Json& conflist);
// A single-plugin .conf as a conflist (cniVersion and name lifted, the rest a plugin).
Json conf_to_conflist(const Json& conf);

// The first *.conflist / *.conf / *.json in dir by name, as the runtimes pick their
// network; empty when there is none.
std::string first_config(const std::string& conf_dir);

struct ChainSpec {
  std::string plugin_binary;  // to copy (the agent image's /usr/bin/sockmesh-cni)
  std::string bin_dir;        // the node's /opt/cni/bin
  std::string conf_dir;       // the node's /etc/cni/net.d
  Json entry;                 // plugin_entry(...)
};

// Idempotent: copies the binary if it differs, chains the entry if missing or changed.
// What it changed goes to `events`. No config file yet (the network plugin has not
// written one): an error saying so (the agent retries every pass).
Status install_chain(const ChainSpec& spec, std::vector<std::string>& events);
// Removes our entry from every config in conf_dir and the binary from bin_dir.
Status uninstall_chain(const std::string& bin_dir, const std::string& conf_dir,
                       std::vector<std::string>& events);

}  // namespace sm::cni
