// Host plumbing for the loader; see system.h.
#include "system.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <ifaddrs.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace sm::host {

Result<std::string> cgroup2_root_from(const std::string& mounts_text) {
  std::istringstream in(mounts_text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string dev, dir, type;
    if (f >> dev >> dir >> type && type == "cgroup2") return dir;
  }
  return plain_error("no cgroup2 filesystem in /proc/mounts (sockmesh needs cgroup v2)");
}

Result<std::string> cgroup2_root(const std::string& mounts_file) {
  std::ifstream f(mounts_file);
  if (!f) return errno_error("read " + mounts_file);
  std::stringstream ss;
  ss << f.rdbuf();
  return cgroup2_root_from(ss.str());
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Status mkdir_p(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + cur);
  }
  return {};
}

static bool is_bpffs(const std::string& path) {
  struct statfs sf {};
  return ::statfs(path.c_str(), &sf) == 0 && static_cast<unsigned long>(sf.f_type) == BPF_FS_MAGIC;
}

Status ensure_bpffs(const std::string& pin_dir) {
  // The deepest existing ancestor of pin_dir must be on bpffs; mount the conventional
  // /sys/fs/bpf when it is not.
  std::string probe = pin_dir;
  while (!probe.empty() && !path_exists(probe)) probe = probe.substr(0, probe.rfind('/'));
  if (probe.empty()) probe = "/";
  if (is_bpffs(probe)) return {};
  const std::string bpffs = "/sys/fs/bpf";
  if (pin_dir.rfind(bpffs + "/", 0) == 0 && !is_bpffs(bpffs)) {
    if (::mount("bpf", bpffs.c_str(), "bpf", 0, "mode=0700") != 0)
      return errno_error("mount bpffs on " + bpffs);
    if (is_bpffs(probe)) return {};
  }
  return plain_error("--pin-dir " + pin_dir + ": not on a bpf filesystem (mount -t bpf bpf DIR)");
}

Status require_privileges(const std::string& what) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return errno_error("capget");
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  std::string missing;
  for (auto [cap, name] : {std::pair{CAP_BPF, "CAP_BPF"}, std::pair{CAP_NET_ADMIN, "CAP_NET_ADMIN"},
                           std::pair{CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}}) {
    if (!has(cap)) missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  if (missing.empty()) return {};
  return plain_error(what + ": needs root (missing " + missing + ")");
}

Result<Cgroup> open_cgroup(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("--cgroup " + path);
  UniqueFd ufd(fd);
  struct statfs sf {};
  if (::fstatfs(fd, &sf) != 0) return errno_error("statfs " + path);
  if (static_cast<unsigned long>(sf.f_type) != 0x63677270 /* CGROUP2_SUPER_MAGIC */)
    return plain_error("--cgroup " + path + ": not a cgroup v2 directory");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("stat " + path);
  return Cgroup{std::move(ufd), path, static_cast<uint64_t>(st.st_ino)};
}

std::string netns_path_of_pid(int pid) {
  return "/proc/" + std::to_string(pid) + "/ns/net";
}

Result<Netns> open_netns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("netns " + path);
  Netns ns{UniqueFd(fd), path, 0, 0};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("stat " + path);
  ns.inode = st.st_ino;
  // setns() moves only the calling thread, so a short-lived thread creates a socket in
  // the target namespace; the socket keeps that namespace for its lifetime.
  Error err;
  int sock = -1;
  std::thread([&] {
    if (::setns(fd, CLONE_NEWNET) != 0) {
      err = errno_error("setns " + path + " (is it a network namespace?)");
      return;
    }
    sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) err = errno_error("socket in " + path);
  }).join();
  if (sock < 0) return err;
  UniqueFd s(sock);
  socklen_t len = sizeof ns.cookie;
  if (::getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, &ns.cookie, &len) != 0)
    return errno_error("getsockopt SO_NETNS_COOKIE");
  return ns;
}

namespace {

// Runs fn on a short-lived thread that joined the netns (setns moves only the thread).
Status in_netns(const Netns& ns, const std::function<Status()>& fn) {
  Status result;
  std::thread([&] {
    if (::setns(ns.fd.get(), CLONE_NEWNET) != 0) {
      result = errno_error("setns " + ns.path);
      return;
    }
    result = fn();
  }).join();
  return result;
}

}  // namespace

Result<std::vector<IpAddr>> netns_addresses(const Netns& ns) {
  std::vector<IpAddr> out;
  Status s = in_netns(ns, [&]() -> Status {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return errno_error("getifaddrs in " + ns.path);
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      IpAddr a;
      uint16_t port;
      socklen_t len =
          i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      if (!from_sockaddr(i->ifa_addr, len, &a, &port) || a.is_loopback()) continue;
      if (!a.is_v4() && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80) continue;  // fe80::/10
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    ::freeifaddrs(list);
    return {};
  });
  if (!s) return s.error();
  return out;
}

Result<std::vector<ListeningSocket>> find_listeners(const Netns& ns, uint16_t port) {
  // Socket inodes listening on the port, from the netns's own /proc/net/tcp{,6}.
  std::vector<std::pair<unsigned long, int>> inodes;
  Status s = in_netns(ns, [&]() -> Status {
    for (auto [file, family] : {std::pair{"tcp", AF_INET}, std::pair{"tcp6", AF_INET6}}) {
      std::ifstream in(std::string("/proc/thread-self/net/") + file);
      std::string line;
      std::getline(in, line);  // header
      while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, state, queues, timer, retr, uid, timeout;
        unsigned long inode = 0;
        if (!(f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
              inode))
          continue;
        size_t colon = local.rfind(':');
        if (state != "0A" || colon == std::string::npos) continue;  // 0A: TCP_LISTEN
        if (std::stoul(local.substr(colon + 1), nullptr, 16) == port && inode)
          inodes.emplace_back(inode, family);
      }
    }
    return {};
  });
  if (!s) return s.error();
  std::vector<ListeningSocket> out;
  if (inodes.empty()) return out;
  std::set<int> families_done;
  DIR* proc = ::opendir("/proc");
  if (!proc) return errno_error("opendir /proc");
  while (dirent* p = ::readdir(proc)) {
    if (p->d_name[0] < '1' || p->d_name[0] > '9') continue;
    std::string fd_dir = std::string("/proc/") + p->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* f = ::readdir(fds)) {
      char target[64] = {};
      std::string link = fd_dir + "/" + f->d_name;
      if (::readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
      for (const auto& [inode, family] : inodes) {
        if (families_done.count(family) ||
            std::string(target) != "socket:[" + std::to_string(inode) + "]")
          continue;
        int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, std::atoi(p->d_name), 0));
        if (pidfd < 0) continue;
        UniqueFd pid_handle(pidfd);
        int dup = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, std::atoi(f->d_name), 0));
        if (dup < 0) continue;
        out.push_back({UniqueFd(dup), family});
        families_done.insert(family);
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return out;
}

Result<int> run_in_netns(const Netns& ns, const std::vector<std::string>& argv,
                         const std::string& input, std::string* output) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return errno_error("pipe");
  pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (::setns(ns.fd.get(), CLONE_NEWNET) != 0) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  // Inputs are a few KiB of rules, far below the pipe buffer: write, then read.
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(in[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0)
    if (output) output->append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return errno_error("waitpid");
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127) return plain_error(argv[0] + ": command not found");
    if (WEXITSTATUS(status) == 126) return plain_error("setns into " + ns.path + " failed");
    return WEXITSTATUS(status);
  }
  return plain_error(argv[0] + " killed by a signal");
}

}  // namespace sm::host
