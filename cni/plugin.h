// sockmesh-cni's commands: ADD enrolls CNI_NETNS and passes prevResult through unchanged,
// DEL unenrolls (and succeeds for a netns it never saw or that is gone), CHECK verifies
// the enrollment, VERSION lists the spec versions. The kernel side sits behind Enroller,
// so this logic is unit tested with a fake.
#pragma once

#include <string>

#include "netconf.h"

namespace sm::cni {

class Enroller {
 public:
  virtual ~Enroller() = default;
  virtual std::optional<CniError> enroll(const std::string& netns, const NetConf& conf,
                                         const WorkloadSettings& s) = 0;
  // netns may be empty or gone (DEL after the runtime removed it).
  virtual std::optional<CniError> unenroll(const std::string& netns, const NetConf& conf) = 0;
  virtual std::optional<CniError> check(const std::string& netns, const NetConf& conf,
                                        const WorkloadSettings& s) = 0;
};

struct Outcome {
  int exit_code = 0;
  std::string stdout_text;  // a result, a version answer, an error object, or nothing
};

Outcome error_outcome(const CniError& e, const std::string& cni_version = kSpecVersion);
Outcome run(const std::variant<CniRequest, CniError>& request, Enroller& enroller);

}  // namespace sm::cni
