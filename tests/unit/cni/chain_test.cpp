// Chaining sockmesh-cni into a node's CNI config (cni/chain.cpp), on sm-* temp dirs as
// the agent does it on /etc/cni/net.d and /opt/cni/bin.
#include "chain.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sm::cni {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void put(const std::string& p, const std::string& text) {
  std::ofstream(p) << text;
}

class Chain : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sm-cni-chain-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(bin_dir());
    fs::create_directories(conf_dir());
    put(root_ + "/plugin", "#!binary v1\n");
    WorkloadSettings s;
    s.exclude_inbound_ports = {15020};
    spec_ = ChainSpec{root_ + "/plugin", bin_dir(), conf_dir(),
                      plugin_entry("/sys/fs/bpf/sockmesh", Mode::ebpf, s)};
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string bin_dir() const { return root_ + "/opt/cni/bin"; }
  std::string conf_dir() const { return root_ + "/etc/cni/net.d"; }
  std::vector<std::string> install() {
    std::vector<std::string> events;
    Status s = install_chain(spec_, events);
    EXPECT_TRUE(s) << s.error().message();
    return events;
  }

  std::string root_;
  ChainSpec spec_;
};

const char* kBridgeConflist = R"({
  "cniVersion": "1.0.0",
  "name": "sm-podnet",
  "plugins": [
    {"type": "bridge", "bridge": "sm-br0", "ipam": {"type": "host-local", "subnet": "198.18.5.0/24"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
})";

TEST_F(Chain, AppendsToTheFirstConflistAndCopiesTheBinaryOnce) {
  put(conf_dir() + "/10-podnet.conflist", kBridgeConflist);
  put(conf_dir() + "/99-other.conflist", kBridgeConflist);
  put(conf_dir() + "/README", "not a config");
  auto events = install();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "installed " + bin_dir() + "/sockmesh-cni");
  EXPECT_EQ(slurp(bin_dir() + "/sockmesh-cni"), "#!binary v1\n");
  EXPECT_EQ(fs::status(bin_dir() + "/sockmesh-cni").permissions() & fs::perms::owner_exec,
            fs::perms::owner_exec);
  Json list = Json::parse(slurp(conf_dir() + "/10-podnet.conflist"));
  ASSERT_EQ(list["plugins"].size(), 3u);
  EXPECT_EQ(list["plugins"][0]["type"], "bridge");
  EXPECT_EQ(list["plugins"][2]["type"], "sockmesh-cni");
  EXPECT_EQ(list["plugins"][2]["excludeInboundPorts"], "15020");
  EXPECT_EQ(Json::parse(slurp(conf_dir() + "/99-other.conflist")), Json::parse(kBridgeConflist));
  // A second pass changes nothing; a rewritten config (the network plugin's own agent
  // restarted) is chained again; a new binary is copied again.
  EXPECT_TRUE(install().empty());
  put(conf_dir() + "/10-podnet.conflist", kBridgeConflist);
  put(root_ + "/plugin", "#!binary v2\n");
  EXPECT_EQ(install().size(), 2u);
  EXPECT_EQ(Json::parse(slurp(conf_dir() + "/10-podnet.conflist"))["plugins"].size(), 3u);
}

TEST_F(Chain, ChangedSettingsReplaceTheEntry) {
  put(conf_dir() + "/10-podnet.conflist", kBridgeConflist);
  install();
  spec_.entry["outboundPort"] = 15101;
  EXPECT_EQ(install().size(), 1u);
  Json list = Json::parse(slurp(conf_dir() + "/10-podnet.conflist"));
  ASSERT_EQ(list["plugins"].size(), 3u);
  EXPECT_EQ(list["plugins"][2]["outboundPort"], 15101);
}

TEST_F(Chain, ASinglePluginConfBecomesAConflist) {
  put(conf_dir() + "/05-bridge.conf",
      R"({"cniVersion":"0.4.0","name":"sm-net","type":"bridge","bridge":"sm-br1"})");
  install();
  EXPECT_FALSE(fs::exists(conf_dir() + "/05-bridge.conf"));
  Json list = Json::parse(slurp(conf_dir() + "/05-bridge.conflist"));
  EXPECT_EQ(list["cniVersion"], "0.4.0");
  EXPECT_EQ(list["name"], "sm-net");
  ASSERT_EQ(list["plugins"].size(), 2u);
  EXPECT_EQ(list["plugins"][0]["bridge"], "sm-br1");
  EXPECT_FALSE(list["plugins"][0].contains("name"));
  EXPECT_EQ(list["plugins"][1]["type"], "sockmesh-cni");
}

TEST_F(Chain, NoConfigYetIsAnErrorThatNamesTheDir) {
  std::vector<std::string> events;
  Status s = install_chain(spec_, events);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("no CNI network config in " + conf_dir()), std::string::npos);
}

TEST_F(Chain, UninstallRemovesTheEntryAndTheBinaryOnly) {
  put(conf_dir() + "/10-podnet.conflist", kBridgeConflist);
  install();
  std::vector<std::string> events;
  ASSERT_TRUE(uninstall_chain(bin_dir(), conf_dir(), events));
  EXPECT_EQ(events.size(), 2u);
  EXPECT_EQ(Json::parse(slurp(conf_dir() + "/10-podnet.conflist")), Json::parse(kBridgeConflist));
  EXPECT_FALSE(fs::exists(bin_dir() + "/sockmesh-cni"));
  events.clear();
  ASSERT_TRUE(uninstall_chain(bin_dir(), conf_dir(), events));  // again: nothing to do
  EXPECT_TRUE(events.empty());
}

}  // namespace
}  // namespace sm::cni
