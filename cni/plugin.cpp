// ADD/DEL/CHECK/VERSION; see plugin.h.
#include "plugin.h"

#include "sockmesh/log.h"

namespace sm::cni {

Outcome error_outcome(const CniError& e, const std::string& cni_version) {
  Json j;
  j["cniVersion"] = cni_version.empty() ? kSpecVersion : cni_version;
  j["code"] = e.code;
  j["msg"] = e.msg;
  if (!e.details.empty()) j["details"] = e.details;
  return Outcome{1, j.dump() + "\n"};
}

Outcome run(const std::variant<CniRequest, CniError>& request, Enroller& enroller) {
  if (const auto* e = std::get_if<CniError>(&request)) return error_outcome(*e);
  const CniRequest& r = std::get<CniRequest>(request);
  const NetConf& conf = r.conf;
  switch (r.command) {
    case Command::version: {
      Json j;
      j["cniVersion"] = kSpecVersion;
      j["supportedVersions"] = kSupportedVersions;
      return Outcome{0, j.dump() + "\n"};
    }
    case Command::add: {
      if (std::string why = skip_reason(r); !why.empty()) {
        SM_INFO("sockmesh-cni: ADD %s: not enrolled: %s", r.container_id.c_str(), why.c_str());
      } else if (auto e = enroller.enroll(r.netns, conf, conf.settings)) {
        return error_outcome(*e, conf.cni_version);
      }
      // A chained plugin returns what the plugins before it made, unchanged; first in a
      // chain (no prevResult) there is nothing to report but the version.
      Json out = conf.prev_result.value_or(Json{{"cniVersion", conf.cni_version}});
      return Outcome{0, out.dump() + "\n"};
    }
    case Command::del:
      if (auto e = enroller.unenroll(r.netns, conf)) return error_outcome(*e, conf.cni_version);
      return Outcome{0, ""};
    case Command::check:
      if (!conf.prev_result)
        return error_outcome({kInvalidConfig, "sockmesh-cni config: CHECK needs prevResult", ""},
                             conf.cni_version);
      if (skip_reason(r).empty())
        if (auto e = enroller.check(r.netns, conf, conf.settings))
          return error_outcome(*e, conf.cni_version);
      return Outcome{0, ""};
  }
  return error_outcome({kInvalidEnv, "unknown command", ""});
}

}  // namespace sm::cni
