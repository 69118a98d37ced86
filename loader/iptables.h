// The baseline interception: the same enrollment settings rendered as iptables nat
// rules equivalent to Istio's proxy_init (OUTPUT -> REDIRECT to the outbound port with
// uid/gid, loopback, port and CIDR bypasses; PREROUTING -> REDIRECT to the inbound port),
// applied with iptables-restore inside the workload's netns.
#pragma once

#include <sys/socket.h>

#include <string>

#include "system.h"
#include "workload.h"

namespace sm::iptables {

// Input for `iptables-restore --noflush` (family AF_INET) or `ip6tables-restore --noflush`
// (AF_INET6) that installs the chains and jumps; CIDRs of the other family are left out.
std::string render_rules(const WorkloadSettings& s, int family = AF_INET);
// Input for `iptables-restore --noflush` that removes whatever sockmesh rules the given
// `iptables-save -t nat` output shows (empty when there are none).
std::string render_teardown(const std::string& iptables_save_nat);

// Replaces any earlier sockmesh rules in the namespace with the ones for `s`.
Status enroll(const host::Netns& ns, const WorkloadSettings& s);
// Removes them; false when there were none.
Result<bool> unenroll(const host::Netns& ns);

}  // namespace sm::iptables
