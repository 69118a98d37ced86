// sockmesh-loader's answers to bad input: one clear message naming the problem, a
// non-zero exit, and nothing half-installed.
#include <sys/stat.h>

#include "harness.h"

namespace sm::test {
namespace {

struct Run {
  int rc;
  std::string out;
};
Run loader(const std::string& args) {
  Run r;
  r.rc = sh(loader_path() + " " + args, &r.out);
  return r;
}
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

TEST(LoaderCli, RejectsUnknownFlagsAndBadValuesNamingThem) {
  auto r = loader("enroll --netns /x --bogus 1");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("unknown flag --bogus"), std::string::npos) << r.out;
  r = loader("enroll --netns /x --outbound-port 70000");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--outbound-port: '70000': port must be 1..65535"), std::string::npos)
      << r.out;
  r = loader("enroll --netns /x --exclude-cidrs 198.18.0.0/33");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--exclude-cidrs: '198.18.0.0/33'"), std::string::npos) << r.out;
  r = loader("enroll --netns /x --include-cidrs 198.18.0.300");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--include-cidrs"), std::string::npos) << r.out;
  r = loader("enroll --netns /x --exclude-inbound-ports 80,http");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--exclude-inbound-ports: 'http'"), std::string::npos) << r.out;
  r = loader("enroll");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("needs --netns PATH or --pid PID"), std::string::npos) << r.out;
  r = loader("frobnicate");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("unknown command 'frobnicate'"), std::string::npos) << r.out;
}

TEST(LoaderCli, MissingNetnsAndMissingInstallAreNamed) {
  SM_REQUIRE_ROOT();
  std::string pins = "/sys/fs/bpf/" + unique_name("pin");
  auto r = loader("enroll --netns /run/netns/sm-does-not-exist --pin-dir " + pins);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("/run/netns/sm-does-not-exist: No such file or directory"),
            std::string::npos)
      << r.out;
  Netns ns(unique_name("ns"));
  r = loader("enroll --netns " + ns.path() + " --pin-dir " + pins);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not installed at " + pins), std::string::npos) << r.out;
  r = loader("enroll --netns /etc/hostname --pin-dir " + pins);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("/etc/hostname"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(pins));
}

TEST(LoaderCli, InstallWithoutPrivilegesChangesNothing) {
  SM_REQUIRE_ROOT();
  Cgroup cg(unique_name("cg"));
  std::string pins = "/sys/fs/bpf/" + unique_name("pin");
  std::string out = run_in(Place::as(65534, 65534), [&](std::string& o) {
    int rc = sh(loader_path() + " install --cgroup " + cg.path() + " --pin-dir " + pins, &o);
    o += " rc=" + std::to_string(rc);
  });
  EXPECT_NE(out.find("install: needs root (missing CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  EXPECT_FALSE(exists(pins));
}

TEST(LoaderCli, InstallIntoABadCgroupLeavesNoPins) {
  SM_REQUIRE_ROOT();
  std::string pins = "/sys/fs/bpf/" + unique_name("pin");
  auto r = loader("install --cgroup /sys/fs/cgroup/sm-no-such-cgroup --pin-dir " + pins);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--cgroup /sys/fs/cgroup/sm-no-such-cgroup"), std::string::npos) << r.out;
  r = loader("install --cgroup /proc --pin-dir " + pins);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not a cgroup v2 directory"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(pins));
}

TEST(LoaderCli, InstallAtAnotherCgroupIsRefusedWithoutChanges) {
  SM_REQUIRE_ROOT();
  Install inst;
  Cgroup other(unique_name("cg"));
  std::string before = inst.status_json();
  std::string out;
  EXPECT_EQ(inst.loader("install --cgroup " + other.path(), &out), 1);
  EXPECT_NE(out.find("already attached to another cgroup"), std::string::npos) << out;
  EXPECT_EQ(inst.status_json(), before);
}

TEST(LoaderCli, StatusWithoutInstallSaysSo) {
  SM_REQUIRE_ROOT();
  auto r = loader("status --pin-dir /sys/fs/bpf/sm-nothing-here");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("not installed at /sys/fs/bpf/sm-nothing-here"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sm::test
