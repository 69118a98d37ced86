// sockmesh-loader's command line (loader/cli.cpp): what each subcommand accepts and how
// bad input is named.
#include "cli.h"

#include <gtest/gtest.h>

namespace sm::cli {
namespace {

Result<Command> p(std::vector<std::string> a) {
  return parse(a);
}
std::string err(std::vector<std::string> a) {
  auto r = parse(a);
  return r ? "<ok>" : r.error().message();
}

TEST(Cli, DefaultsFollowDesign) {
  auto c = p({"enroll", "--pid", "42"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->verb, Verb::enroll);
  EXPECT_EQ(c->netns_path, "/proc/42/ns/net");
  EXPECT_EQ(c->pins.dir, "/sys/fs/bpf/sockmesh");
  EXPECT_EQ(c->mode, Mode::ebpf);
  EXPECT_EQ(c->settings.outbound_port, 15001);
  EXPECT_EQ(c->settings.inbound_port, 15006);
  EXPECT_EQ(c->settings.proxy_uid, 1337u);
  EXPECT_EQ(c->settings.gid(), 1337u);
}

TEST(Cli, EnrollFlagsBothSpellings) {
  auto c =
      p({"enroll", "--netns=/run/netns/a", "--outbound-port", "15101", "--inbound-port=15106",
         "--proxy-uid", "2000", "--proxy-gid=3000", "--exclude-outbound-ports", "9999,3306",
         "--exclude-inbound-ports=15020", "--exclude-cidrs", "198.19.0.0/16", "--include-cidrs",
         "198.18.0.0/15", "--mode", "iptables", "--pin-dir", "/sys/fs/bpf/x/"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->netns_path, "/run/netns/a");
  EXPECT_EQ(c->settings.outbound_port, 15101);
  EXPECT_EQ(c->settings.inbound_port, 15106);
  EXPECT_EQ(c->settings.proxy_uid, 2000u);
  EXPECT_EQ(c->settings.gid(), 3000u);
  EXPECT_EQ(c->settings.exclude_outbound_ports, (std::vector<uint16_t>{3306, 9999}));
  EXPECT_EQ(c->settings.exclude_inbound_ports, (std::vector<uint16_t>{15020}));
  EXPECT_EQ(c->settings.exclude_cidrs.at(0).str(), "198.19.0.0/16");
  EXPECT_EQ(c->settings.include_cidrs.at(0).str(), "198.18.0.0/15");
  EXPECT_EQ(c->mode, Mode::iptables);
  EXPECT_EQ(c->pins.dir, "/sys/fs/bpf/x");
}

TEST(Cli, InstallAndSplice) {
  auto c = p({"install", "--cgroup", "/sys/fs/cgroup/unified/sm-x", "--no-splice"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cgroup, "/sys/fs/cgroup/unified/sm-x");
  EXPECT_EQ(c->splice, std::optional<bool>(false));
  // Without --no-splice a rerun keeps the running install's setting.
  EXPECT_EQ(p({"install"})->splice, std::nullopt);
  EXPECT_EQ(p({"splice", "on"})->splice, std::optional<bool>(true));
  EXPECT_EQ(p({"splice", "off"})->splice, std::optional<bool>(false));
  EXPECT_TRUE(p({"enroll", "--netns", "/run/netns/x", "--splice-app"})->settings.splice_app);
  EXPECT_FALSE(p({"enroll", "--netns", "/run/netns/x"})->settings.splice_app);
  EXPECT_TRUE(p({"enroll", "--netns", "/run/netns/x", "--fail-open"})->settings.fail_open);
  EXPECT_FALSE(p({"enroll", "--netns", "/run/netns/x"})->settings.fail_open);  // fail closed
  EXPECT_EQ(err({"enroll", "--netns", "/run/netns/x", "--mode", "iptables", "--fail-open"}),
            "enroll: --fail-open works only with --mode ebpf (iptables REDIRECT cannot tell "
            "whether the sidecar listens; Istio has no fail-open mode)");
  EXPECT_EQ(err({"splice"}), "splice: say on or off");
  EXPECT_EQ(err({"splice", "on", "off"}), "splice: give on or off once");
  EXPECT_TRUE(p({"-v", "status", "--json"})->json);
}

TEST(Cli, ErrorsNameTheFlag) {
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--bogus"}), "enroll: unknown flag --bogus");
  EXPECT_EQ(err({"install", "--netns", "/a"}), "install: unknown flag --netns");
  EXPECT_EQ(err({"enroll", "--netns"}), "--netns: missing value");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--inbound-port", "0"}),
            "--inbound-port: '0': port must be 1..65535");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--exclude-cidrs", "198.18.0.0/40"}),
            "--exclude-cidrs: '198.18.0.0/40': prefix length must be 0..32");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--proxy-uid", "root"}),
            "--proxy-uid: 'root': not a number");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--mode", "nft"}),
            "--mode: 'nft': must be ebpf or iptables");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--pid", "1"}),
            "enroll: give only one of --netns, --pid");
  EXPECT_EQ(err({"enroll", "--pid", "x"}), "--pid: 'x': not a process id");
  EXPECT_EQ(err({"enroll", "--netns", "/a", "--outbound-port", "15006"}),
            "--outbound-port and --inbound-port must differ (both 15006)");
  EXPECT_EQ(err({"status", "--json=1"}), "--json: takes no value");
  EXPECT_EQ(err({"install", "--pin-dir", "relative"}),
            "--pin-dir: 'relative': needs an absolute path");
  EXPECT_EQ(err({"unenroll"}), "unenroll: needs one of --netns PATH, --pid PID, --netns-cookie N");
  EXPECT_EQ(err({"unenroll", "--netns-cookie", "12", "--mode", "iptables"}),
            "unenroll: --netns-cookie works only with --mode ebpf");
  EXPECT_EQ(err({"install", "extra"}), "install: unexpected argument 'extra'");
  EXPECT_EQ(err({"launch"}), "unknown command 'launch' (see sockmesh-loader --help)");
}

TEST(Cli, HelpIsAVerb) {
  EXPECT_EQ(p({})->verb, Verb::help);
  EXPECT_EQ(p({"--help"})->verb, Verb::help);
  EXPECT_NE(std::string(usage()).find("enroll"), std::string::npos);
}

TEST(Cli, AgentTakesStatusFileIntervalCniDirsAndEnrollDefaults) {
  auto c = p({"agent", "--status-file", "/run/sockmesh/s", "--interval", "2", "--cni-bin-dir",
              "/host/opt/cni/bin", "--cni-conf-dir", "/host/etc/cni/net.d",
              "--exclude-outbound-ports", "", "--exclude-inbound-ports", "15020,15021",
              "--include-cidrs", "", "--proxy-gid", "1337"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->verb, Verb::agent);
  EXPECT_EQ(c->status_file, "/run/sockmesh/s");
  EXPECT_EQ(c->interval_seconds, 2);
  EXPECT_EQ(c->cni_bin_dir, "/host/opt/cni/bin");
  EXPECT_EQ(c->cni_conf_dir, "/host/etc/cni/net.d");
  EXPECT_TRUE(c->settings.exclude_outbound_ports.empty());
  EXPECT_EQ(c->settings.exclude_inbound_ports, (std::vector<uint16_t>{15020, 15021}));
  auto d = p({"agent"});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status_file, "/run/sockmesh/agent.status");
  EXPECT_EQ(d->interval_seconds, 5);
  EXPECT_TRUE(d->cni_conf_dir.empty());
  EXPECT_EQ(err({"agent", "--interval", "0"}).find("--interval: '0': must be 1..10"), 0u);
  EXPECT_EQ(err({"agent", "--status-file", "rel"}), "--status-file: 'rel': needs an absolute path");
  EXPECT_EQ(err({"agent", "--cni-bin-dir", "/b"}),
            "agent: give both --cni-bin-dir and --cni-conf-dir, or neither");
  EXPECT_EQ(err({"agent", "--netns", "/x"}), "agent: unknown flag --netns");
  EXPECT_EQ(err({"agent", "--mode", "iptables", "--fail-open"}),
            "agent: --fail-open works only with --mode ebpf");
  EXPECT_TRUE(p({"agent", "--fail-open"})->settings.fail_open);
}

}  // namespace
}  // namespace sm::cli
