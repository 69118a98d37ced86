// sm-no-io-uring [--errno EPERM|ENOSYS] -- PROGRAM ARGS...: runs PROGRAM under a seccomp
// filter that answers io_uring_setup, io_uring_enter and io_uring_register with an error, as
// the default seccomp profiles of Docker and containerd do (EPERM), and allows every other
// system call. A raw classic-BPF filter (no libseccomp); no privileges needed (no_new_privs).
// Before exec it checks that io_uring_setup is refused, so a filter that did not take fails.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#define SM_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SM_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "sm-no-io-uring: add this architecture's AUDIT_ARCH_*"
#endif

namespace {

int usage() {
  std::fputs("usage: sm-no-io-uring [--errno EPERM|ENOSYS] -- PROGRAM [ARGS...]\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int err = EPERM;
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strcmp(argv[i], "--errno") != 0 || i + 1 >= argc) return usage();
    const std::string name = argv[++i];
    if (name == "EPERM")
      err = EPERM;
    else if (name == "ENOSYS")
      err = ENOSYS;
    else
      return usage();
  }
  if (i + 1 >= argc) return usage();
  char** cmd = argv + i + 1;

  const unsigned ret_errno = SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA);
  sock_filter filter[] = {
      // Another architecture's system call numbers mean other calls: leave them alone.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SM_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, ret_errno),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::perror("sm-no-io-uring: PR_SET_NO_NEW_PRIVS");
    return 1;
  }
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("sm-no-io-uring: PR_SET_SECCOMP");
    return 1;
  }
  io_uring_params p{};
  long fd = ::syscall(__NR_io_uring_setup, 4, &p);
  if (fd >= 0 || errno != err) {
    std::fprintf(stderr, "sm-no-io-uring: the filter did not take: io_uring_setup gave %ld (%s)\n",
                 fd, std::strerror(errno));
    return 1;
  }
  ::execvp(cmd[0], cmd);
  std::fprintf(stderr, "sm-no-io-uring: %s: %s\n", cmd[0], std::strerror(errno));
  return 127;
}
