// Where an install lives on bpffs: <pin-dir>/maps/<map name> and <pin-dir>/links/<link>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sm {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/sockmesh";

struct PinLayout {
  std::string dir = kDefaultPinDir;

  std::string maps() const { return dir + "/maps"; }
  std::string links() const { return dir + "/links"; }
  std::string map(const std::string& name) const { return maps() + "/" + name; }
  std::string link(const std::string& name) const { return links() + "/" + name; }
  // The sk_lookup link of one enrolled netns.
  static std::string inbound_link_name(uint64_t netns_cookie) {
    return "inbound_" + std::to_string(netns_cookie);
  }
};

// Names of the entries of a directory (not . and ..); empty if it does not exist.
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace sm
