// What the loader needs from the host, outside BPF: the cgroup v2 mount, bpffs, the
// caller's privileges, and handles on network namespaces (cookie and inode).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sockmesh/net.h"
#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::host {

// The cgroup v2 mount point from /proc/mounts (/sys/fs/cgroup or, on hybrid hosts,
// /sys/fs/cgroup/unified).
Result<std::string> cgroup2_root(const std::string& mounts_file = "/proc/mounts");
// Parses the text of a mounts file; split out so it is unit tested.
Result<std::string> cgroup2_root_from(const std::string& mounts_text);

// Mounts bpffs on the bpffs directory that holds `pin_dir` (default /sys/fs/bpf) when
// nothing is mounted there, and checks that `pin_dir` lies on a bpffs.
Status ensure_bpffs(const std::string& pin_dir);

// Fails with a message naming the missing capability (CAP_BPF, CAP_NET_ADMIN,
// CAP_SYS_ADMIN) unless the caller has them all. `what` is the subcommand.
Status require_privileges(const std::string& what);

struct Cgroup {
  UniqueFd fd;
  std::string path;
  uint64_t id = 0;  // cgroup id == inode of the cgroup directory
};
Result<Cgroup> open_cgroup(const std::string& path);

// A network namespace, opened from a path (/run/netns/X, /proc/PID/ns/net).
struct Netns {
  UniqueFd fd;
  std::string path;
  uint64_t cookie = 0;  // SO_NETNS_COOKIE: unique for the host's lifetime, never reused
  uint64_t inode = 0;   // nsfs inode (what `ip netns identify`, lsns and ls -lL show)
};
Result<Netns> open_netns(const std::string& path);
std::string netns_path_of_pid(int pid);

// Runs argv in the given netns (fork, setns, exec) feeding `input` on stdin. Returns the
// exit status; combined stderr/stdout is captured into `output`.
Result<int> run_in_netns(const Netns& ns, const std::vector<std::string>& argv,
                         const std::string& input, std::string* output);

// The netns's own addresses (every interface but loopback; IPv6 link-local left out):
// the pod addresses only this netns may use as the local side of a spliced connection.
Result<std::vector<IpAddr>> netns_addresses(const Netns& ns);

// Sockets listening on TCP `port` in the netns, duplicated into this process (pidfd_getfd
// from whichever process holds them): a sidecar that was listening before its netns was
// enrolled. `family` is AF_INET or AF_INET6.
struct ListeningSocket {
  UniqueFd fd;
  int family = 0;
};
Result<std::vector<ListeningSocket>> find_listeners(const Netns& ns, uint16_t port);

Status mkdir_p(const std::string& path);
bool path_exists(const std::string& path);

}  // namespace sm::host
