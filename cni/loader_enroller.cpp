// Enrollment through the loader library; see loader_enroller.h.
#include "loader_enroller.h"

#include "iptables.h"
#include "mesh.h"
#include "sockmesh/log.h"

namespace sm::cni {
namespace {

// Without an install, pods cannot be enrolled yet: the runtime retries sandbox creation,
// so a pod never starts unintercepted while the agent is still coming up.
std::variant<Mesh, CniError> open_mesh(const NetConf& conf) {
  auto mesh = Mesh::open(PinLayout{conf.pin_dir});
  if (!mesh)
    return CniError{kTryAgainLater, mesh.error().message(),
                    "is the sockmesh-loader agent running on this node?"};
  return std::move(*mesh);
}

}  // namespace

std::optional<CniError> LoaderEnroller::enroll(const std::string& netns, const NetConf& conf,
                                               const WorkloadSettings& s) {
  auto ns = host::open_netns(netns);
  if (!ns) return CniError{kUnknownContainer, "CNI_NETNS: " + ns.error().message(), ""};
  if (conf.mode == Mode::iptables) {
    if (Status st = iptables::enroll(*ns, s); !st)
      return CniError{kEnrollFailed, "enroll " + netns + ": " + st.error().message(), ""};
    return std::nullopt;
  }
  auto mesh = open_mesh(conf);
  if (auto* e = std::get_if<CniError>(&mesh)) return *e;
  if (Status st = std::get<Mesh>(mesh).enroll(*ns, s); !st)
    return CniError{kEnrollFailed, "enroll " + netns + ": " + st.error().message(), ""};
  SM_INFO("sockmesh-cni: enrolled %s (netns cookie %llu)", netns.c_str(),
          static_cast<unsigned long long>(ns->cookie));
  return std::nullopt;
}

std::optional<CniError> LoaderEnroller::unenroll(const std::string& netns, const NetConf& conf) {
  std::optional<host::Netns> ns;
  if (!netns.empty())
    if (auto opened = host::open_netns(netns)) ns = std::move(*opened);
  if (conf.mode == Mode::iptables) {
    // The rules live in the netns: gone with it, else removed here.
    if (ns)
      if (auto r = iptables::unenroll(*ns); !r)
        return CniError{kIoFailure, "unenroll " + netns + ": " + r.error().message(), ""};
    return std::nullopt;
  }
  auto mesh = Mesh::open(PinLayout{conf.pin_dir});
  if (!mesh) return std::nullopt;  // nothing installed, so nothing enrolled
  if (ns) {
    if (auto r = mesh->unenroll(ns->cookie); !r)
      return CniError{kIoFailure, "unenroll " + netns + ": " + r.error().message(), ""};
    return std::nullopt;
  }
  // The netns is gone already: unenroll every workload whose netns is gone (this one too).
  if (auto r = mesh->collect_gone(); !r)
    return CniError{kIoFailure, "unenroll gone namespaces: " + r.error().message(), ""};
  return std::nullopt;
}

std::optional<CniError> LoaderEnroller::check(const std::string& netns, const NetConf& conf,
                                              const WorkloadSettings& s) {
  auto ns = host::open_netns(netns);
  if (!ns) return CniError{kUnknownContainer, "CNI_NETNS: " + ns.error().message(), ""};
  if (conf.mode == Mode::iptables) return std::nullopt;
  auto mesh = open_mesh(conf);
  if (auto* e = std::get_if<CniError>(&mesh)) return *e;
  auto enrolled = list_enrolled(std::get<Mesh>(mesh).store());
  if (!enrolled) return CniError{kIoFailure, enrolled.error().message(), ""};
  for (const auto& w : *enrolled) {
    if (w.netns_cookie != ns->cookie) continue;
    const WorkloadSettings& have = w.settings;
    if (have.outbound_port != s.outbound_port || have.inbound_port != s.inbound_port ||
        have.proxy_uid != s.proxy_uid || have.gid() != s.gid())
      return CniError{kNotEnrolled, netns + " is enrolled with other settings", ""};
    return std::nullopt;
  }
  return CniError{kNotEnrolled,
                  netns + " (netns cookie " + std::to_string(ns->cookie) + ") is not enrolled", ""};
}

}  // namespace sm::cni
