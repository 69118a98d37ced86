// What a CNI runtime hands sockmesh-cni: the network config on stdin (with prevResult
// and runtimeConfig) and the CNI_* environment, parsed into a CniRequest. Pure logic
// (unit tested): every error names the config key, env variable or annotation at fault.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sockmesh/result.h"
#include "workload.h"

namespace sm::cni {

using Json = nlohmann::ordered_json;  // keeps the runtime's key order in what we echo

inline constexpr const char* kPluginType = "sockmesh-cni";
inline constexpr const char* kSpecVersion = "1.0.0";
inline const std::vector<std::string> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
// containerd (1.5+) and CRI-O (since 2023) put the pod's annotations in runtimeConfig under
// this key when the plugin's config declares the capability.
inline constexpr const char* kAnnotationsCapability = "io.kubernetes.cri.pod-annotations";

// CNI spec error codes (1..99 reserved by the spec; 100+ are ours).
enum Code : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnv = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kEnrollFailed = 100,
  kNotEnrolled = 101,
};

struct CniError {
  int code = 0;
  std::string msg;
  std::string details;
};

enum class Mode { ebpf, iptables };

// The plugin's own keys in the network config (a conflist entry).
struct NetConf {
  std::string cni_version;
  std::string name;
  std::string pin_dir = "/sys/fs/bpf/sockmesh";  // pinDir
  Mode mode = Mode::ebpf;                        // mode: "ebpf" | "iptables"
  WorkloadSettings settings;                     // outboundPort, inboundPort, proxyUid, ...
  std::vector<std::string> exclude_namespaces = {"kube-system"};  // excludeNamespaces
  std::map<std::string, std::string> annotations;  // runtimeConfig[kAnnotationsCapability]
  std::optional<Json> prev_result;                 // prevResult, echoed unchanged
};

enum class Command { add, del, check, version };

struct CniRequest {
  Command command = Command::version;
  std::string container_id;
  std::string netns;                        // CNI_NETNS (may be empty on DEL)
  std::string ifname;                       // CNI_IFNAME
  std::map<std::string, std::string> args;  // CNI_ARGS, "K=V;K=V"
  NetConf conf;
};

// Parses the environment (a lookup function: getenv in the binary, a map in tests) and
// the stdin text. VERSION needs no config.
using Env = std::map<std::string, std::string>;
std::variant<CniRequest, CniError> parse_request(const Env& env, const std::string& stdin_text);
std::variant<NetConf, CniError> parse_netconf(const std::string& stdin_text);
std::map<std::string, std::string> parse_cni_args(const std::string& text);

// Istio's traffic.sidecar.istio.io/* annotations over the config's settings:
// excludeOutboundPorts, excludeInboundPorts, excludeOutboundIPRanges replace the
// config's lists; includeOutboundIPRanges "*" means every destination, "" none.
Status apply_annotations(const std::map<std::string, std::string>& annotations,
                         WorkloadSettings& s);

// Why a pod is left alone: its namespace is excluded, or it opted out with the
// annotation sockmesh.io/enroll: "false". Empty when it is to be enrolled.
std::string skip_reason(const CniRequest& r);

// The conflist entry for the given settings (what the node agent chains in).
Json plugin_entry(const std::string& pin_dir, Mode mode, const WorkloadSettings& s);

}  // namespace sm::cni
