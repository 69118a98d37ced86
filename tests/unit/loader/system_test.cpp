// Host discovery without a kernel: the cgroup v2 mount from /proc/mounts text.
#include "system.h"

#include <gtest/gtest.h>

namespace sm::host {
namespace {

TEST(System, FindsCgroup2OnHybridAndUnifiedHosts) {
  const std::string hybrid =
      "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
      "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
  EXPECT_EQ(*cgroup2_root_from(hybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(*cgroup2_root_from("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"), "/sys/fs/cgroup");
  auto none = cgroup2_root_from("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("cgroup v2"), std::string::npos);
}

}  // namespace
}  // namespace sm::host
