// The Enroller that acts on the host: the loader's own library (Mesh, iptables), linked
// into sockmesh-cni, so the plugin needs no sockmesh-loader binary on the node (the
// loader lives in the agent's image; the runtime runs the plugin on the host).
#pragma once

#include "plugin.h"

namespace sm::cni {

class LoaderEnroller : public Enroller {
 public:
  std::optional<CniError> enroll(const std::string& netns, const NetConf& conf,
                                 const WorkloadSettings& s) override;
  std::optional<CniError> unenroll(const std::string& netns, const NetConf& conf) override;
  std::optional<CniError> check(const std::string& netns, const NetConf& conf,
                                const WorkloadSettings& s) override;
};

}  // namespace sm::cni
