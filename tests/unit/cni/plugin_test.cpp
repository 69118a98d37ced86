// sockmesh-cni's commands (cni/plugin.cpp) over a recording fake Enroller: what reaches
// stdout, the exit code, and which enrollment calls were made.
#include "plugin.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace sm::cni {
namespace {

struct FakeEnroller : Enroller {
  std::vector<std::string> calls;
  std::optional<CniError> fail;
  WorkloadSettings last;
  std::optional<CniError> enroll(const std::string& netns, const NetConf&,
                                 const WorkloadSettings& s) override {
    calls.push_back("enroll " + netns);
    last = s;
    return fail;
  }
  std::optional<CniError> unenroll(const std::string& netns, const NetConf&) override {
    calls.push_back("unenroll " + netns);
    return fail;
  }
  std::optional<CniError> check(const std::string& netns, const NetConf&,
                                const WorkloadSettings&) override {
    calls.push_back("check " + netns);
    return fail;
  }
};

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(SM_CNI_FIXTURES) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Env env_for(const std::string& cmd) {
  return {{"CNI_COMMAND", cmd},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_NETNS", "/run/netns/sm-pod"},
          {"CNI_PATH", "/usr/lib/cni"}};
}

TEST(Plugin, AddEnrollsAndPassesPrevResultThroughUnchanged) {
  FakeEnroller f;
  std::string conf = fixture("bridge-prev-result.json");
  Outcome o = run(parse_request(env_for("ADD"), conf), f);
  EXPECT_EQ(o.exit_code, 0) << o.stdout_text;
  EXPECT_EQ(f.calls, std::vector<std::string>{"enroll /run/netns/sm-pod"});
  // Same JSON, same key order as the runtime sent it.
  Json in = Json::parse(conf)["prevResult"];
  EXPECT_EQ(o.stdout_text, in.dump() + "\n");
  // The annotation reached the settings.
  EXPECT_EQ(f.last.exclude_outbound_ports, (std::vector<uint16_t>{3306, 9999}));
}

TEST(Plugin, AddFirstInAChainAnswersAnEmptyResult) {
  FakeEnroller f;
  Outcome o =
      run(parse_request(env_for("ADD"), R"({"cniVersion":"0.4.0","name":"n","type":"t"})"), f);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "{\"cniVersion\":\"0.4.0\"}\n");
}

TEST(Plugin, AddFailureIsACniErrorObject) {
  FakeEnroller f;
  f.fail = CniError{kTryAgainLater, "sockmesh is not installed at /sys/fs/bpf/sockmesh", "agent?"};
  Outcome o = run(parse_request(env_for("ADD"), fixture("bridge-prev-result.json")), f);
  EXPECT_EQ(o.exit_code, 1);
  Json e = Json::parse(o.stdout_text);
  EXPECT_EQ(e["cniVersion"], "1.0.0");
  EXPECT_EQ(e["code"], 11);
  EXPECT_EQ(e["msg"], "sockmesh is not installed at /sys/fs/bpf/sockmesh");
  EXPECT_EQ(e["details"], "agent?");
}

TEST(Plugin, BadConfigIsACniErrorObjectAndNothingIsEnrolled) {
  FakeEnroller f;
  Outcome o = run(parse_request(env_for("ADD"), R"({"cniVersion":"1.0.0","outboundPort":"x"})"), f);
  EXPECT_EQ(o.exit_code, 1);
  Json e = Json::parse(o.stdout_text);
  EXPECT_EQ(e["code"], 7);
  EXPECT_EQ(e["msg"], "sockmesh-cni config: outboundPort: \"x\": must be a number 0..65535");
  EXPECT_TRUE(f.calls.empty());
}

TEST(Plugin, SkippedPodIsNotEnrolledButItsResultPasses) {
  FakeEnroller f;
  Env env = env_for("ADD");
  env["CNI_ARGS"] = "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns";
  Outcome o = run(parse_request(env, fixture("bridge-prev-result.json")), f);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_TRUE(f.calls.empty());
  EXPECT_EQ(Json::parse(o.stdout_text)["ips"][0]["gateway"], "198.18.5.1");
}

TEST(Plugin, DelWithoutNetnsUnenrollsAndPrintsNothing) {
  FakeEnroller f;
  Env env = env_for("DEL");
  env.erase("CNI_NETNS");
  Outcome o = run(parse_request(env, fixture("bridge-prev-result.json")), f);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  EXPECT_EQ(f.calls, std::vector<std::string>{"unenroll "});
}

TEST(Plugin, CheckNeedsPrevResultAndAsksTheEnroller) {
  FakeEnroller f;
  Outcome o =
      run(parse_request(env_for("CHECK"), R"({"cniVersion":"1.0.0","name":"n","type":"t"})"), f);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(Json::parse(o.stdout_text)["code"], 7);
  o = run(parse_request(env_for("CHECK"), fixture("bridge-prev-result.json")), f);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  EXPECT_EQ(f.calls, std::vector<std::string>{"check /run/netns/sm-pod"});
  f.fail = CniError{kNotEnrolled, "not enrolled", ""};
  o = run(parse_request(env_for("CHECK"), fixture("bridge-prev-result.json")), f);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(Json::parse(o.stdout_text)["code"], 101);
}

TEST(Plugin, VersionListsTheSpecVersions) {
  FakeEnroller f;
  Outcome o = run(parse_request({{"CNI_COMMAND", "VERSION"}}, "{}"), f);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text,
            "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\","
            "\"1.0.0\"]}\n");
}

}  // namespace
}  // namespace sm::cni
