// Command line of sockmesh-loader, parsed into a Command. Every error names the flag or
// subcommand at fault; parsing is pure (unit tested), acting on it is main.cpp's job.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pins.h"
#include "sockmesh/result.h"
#include "workload.h"

namespace sm::cli {

enum class Verb { help, install, uninstall, status, enroll, unenroll, splice, agent };
enum class Mode { ebpf, iptables };

struct Command {
  Verb verb = Verb::help;
  PinLayout pins;
  bool verbose = false;
  // install
  std::string cgroup;
  std::optional<bool> splice;  // install: --no-splice (unset: keep / on when new); splice: on|off
  // status
  bool json = false;
  // enroll / unenroll
  Mode mode = Mode::ebpf;
  std::string netns_path;                // from --netns or --pid
  std::optional<uint64_t> netns_cookie;  // unenroll --netns-cookie (netns already gone)
  WorkloadSettings settings;             // agent: the defaults written into the CNI plugin's config
  // agent
  std::string status_file = "/run/sockmesh/agent.status";
  int interval_seconds = 5;
  std::string cni_bin_dir;                           // empty: no CNI plugin install
  std::string cni_conf_dir;                          // both or neither
  std::string cni_plugin = "/usr/bin/sockmesh-cni";  // the binary to install
};

Result<Command> parse(const std::vector<std::string>& args);
const char* usage();

}  // namespace sm::cli
