// The sockets sockmesh-proxy opens itself: dual-stack listeners and upstream sockets. The
// proxy does only non-blocking I/O and never splice(2), so it declares every one of them
// safe to splice (bpf/sockmesh_abi.h, SM_SO_SPLICE_SAFE).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/original_dst.h"
#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {

// Tells sockmesh the socket may be spliced. Best effort: without sockmesh installed the
// kernel answers ENOPROTOOPT, which is ignored.
void declare_splice_safe(int fd);

// A listener on [::]:port with IPV6_V6ONLY off (one socket serves IPv4 and IPv6), or on
// 0.0.0.0:port when this host cannot make AF_INET6 sockets. SO_REUSEPORT: one per worker.
// `what` names the flag in errors ("--outbound-port 15001: bind: ...").
Result<UniqueFd> open_listener(uint16_t port, std::string_view what);

// A non-blocking TCP socket in `target`'s family with TCP_NODELAY, bound to `source` first
// when given (an ephemeral port chosen at connect time), not yet connected.
Result<UniqueFd> open_upstream(const Endpoint& target, const std::optional<IpAddr>& source);

}  // namespace sm::proxy
