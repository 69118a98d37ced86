// sockmesh-cni's network config, CNI_* environment and Istio annotations
// (cni/netconf.cpp): defaults, both list spellings, and errors that name the key.
#include "netconf.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace sm::cni {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(SM_CNI_FIXTURES) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

NetConf conf_ok(const std::string& text) {
  auto r = parse_netconf(text);
  if (auto* e = std::get_if<CniError>(&r)) ADD_FAILURE() << e->msg;
  return std::get_if<NetConf>(&r) ? std::get<NetConf>(r) : NetConf{};
}

CniError conf_err(const std::string& text) {
  auto r = parse_netconf(text);
  if (auto* e = std::get_if<CniError>(&r)) return *e;
  ADD_FAILURE() << "accepted: " << text;
  return {};
}

TEST(NetConf, DefaultsAreTheLoadersEnrollDefaults) {
  NetConf c = conf_ok(R"({"cniVersion":"1.0.0","name":"n","type":"sockmesh-cni"})");
  EXPECT_EQ(c.pin_dir, "/sys/fs/bpf/sockmesh");
  EXPECT_EQ(c.mode, Mode::ebpf);
  EXPECT_EQ(c.settings.outbound_port, 15001);
  EXPECT_EQ(c.settings.inbound_port, 15006);
  EXPECT_EQ(c.settings.proxy_uid, 1337u);
  EXPECT_EQ(c.settings.gid(), 1337u);
  EXPECT_EQ(c.exclude_namespaces, std::vector<std::string>{"kube-system"});
  EXPECT_FALSE(c.prev_result);
}

TEST(NetConf, KeysListsAnnotationsAndPrevResult) {
  NetConf c = conf_ok(fixture("bridge-prev-result.json"));
  EXPECT_EQ(c.settings.outbound_port, 15101);
  EXPECT_EQ(c.settings.exclude_inbound_ports, (std::vector<uint16_t>{15020, 15021}));
  ASSERT_EQ(c.settings.exclude_cidrs.size(), 1u);
  EXPECT_EQ(c.settings.exclude_cidrs[0].str(), "198.19.0.0/16");
  EXPECT_EQ(c.annotations.at("traffic.sidecar.istio.io/excludeOutboundPorts"), "3306,9999");
  ASSERT_TRUE(c.prev_result);
  EXPECT_EQ((*c.prev_result)["ips"][0]["address"], "198.18.5.2/24");
}

TEST(NetConf, ErrorsNameTheKey) {
  const std::string head = R"({"cniVersion":"1.0.0","name":"n","type":"sockmesh-cni",)";
  EXPECT_EQ(conf_err("not json").code, kDecodeFailure);
  EXPECT_EQ(conf_err(R"({"name":"n"})").msg, "sockmesh-cni config: cniVersion: missing");
  EXPECT_EQ(conf_err(R"({"cniVersion":"2.0.0"})").code, kIncompatibleVersion);
  auto e = conf_err(head + R"("inboundPort":70000})");
  EXPECT_EQ(e.code, kInvalidConfig);
  EXPECT_EQ(e.msg, "sockmesh-cni config: inboundPort: 70000: must be a number 0..65535");
  EXPECT_EQ(conf_err(head + R"("mode":"nft"})").msg,
            "sockmesh-cni config: mode: 'nft': must be ebpf or iptables");
  EXPECT_NE(conf_err(head + R"("excludeCidrs":"198.18.0.0/33"})")
                .msg.find("excludeCidrs: '198.18.0.0/33'"),
            std::string::npos);
  EXPECT_NE(conf_err(head + R"("excludeOutboundPorts":[80,"http"]})")
                .msg.find("excludeOutboundPorts: 'http'"),
            std::string::npos);
  EXPECT_EQ(conf_err(head + R"("pinDir":"rel"})").msg,
            "sockmesh-cni config: pinDir: 'rel': needs an absolute path");
  EXPECT_EQ(conf_err(head + R"("failOpen":"yes"})").msg,
            "sockmesh-cni config: failOpen: must be true or false");
  EXPECT_EQ(conf_err(head + R"("failOpen":true,"mode":"iptables"})").code, kInvalidConfig);
  EXPECT_EQ(conf_err(head + R"("excludeNamespaces":"kube-system"})").msg,
            "sockmesh-cni config: excludeNamespaces: must be an array of strings");
}

TEST(CniArgs, SplitsKeyValuePairs) {
  auto a = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;junk;=x");
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a["K8S_POD_NAMESPACE"], "shop");
  EXPECT_EQ(a["K8S_POD_NAME"], "web-0");
  EXPECT_TRUE(parse_cni_args("").empty());
}

TEST(Annotations, IstioAnnotationsReplaceTheConfigLists) {
  WorkloadSettings s;
  s.exclude_inbound_ports = {15020, 15021, 15090};
  ASSERT_TRUE(apply_annotations(
      {{"traffic.sidecar.istio.io/excludeOutboundPorts", "3306"},
       {"traffic.sidecar.istio.io/excludeInboundPorts", "9090,15020"},
       {"traffic.sidecar.istio.io/excludeOutboundIPRanges", "198.19.0.0/16,2001:2::/48"},
       {"traffic.sidecar.istio.io/includeOutboundIPRanges", "198.18.0.0/15"},
       {"other.io/x", "1"}},
      s));
  EXPECT_EQ(s.exclude_outbound_ports, std::vector<uint16_t>{3306});
  EXPECT_EQ(s.exclude_inbound_ports, (std::vector<uint16_t>{9090, 15020}));
  ASSERT_EQ(s.exclude_cidrs.size(), 2u);
  EXPECT_EQ(s.exclude_cidrs[1].str(), "2001:2::/48");
  ASSERT_EQ(s.include_cidrs.size(), 1u);
  EXPECT_TRUE(s.restricts_includes());
}

TEST(Annotations, IncludeStarMeansAllAndEmptyMeansNone) {
  WorkloadSettings s;
  ASSERT_TRUE(apply_annotations({{"traffic.sidecar.istio.io/includeOutboundIPRanges", "*"}}, s));
  EXPECT_FALSE(s.restricts_includes());
  EXPECT_TRUE(s.exclude_cidrs.empty());
  WorkloadSettings none;
  ASSERT_TRUE(apply_annotations({{"traffic.sidecar.istio.io/includeOutboundIPRanges", ""}}, none));
  ASSERT_EQ(none.exclude_cidrs.size(), 2u);  // every destination of both families excluded
  EXPECT_EQ(none.exclude_cidrs[0].str(), "0.0.0.0/0");
  EXPECT_EQ(none.exclude_cidrs[1].str(), "::/0");
}

TEST(Annotations, BadValueIsNamedAndChangesNothing) {
  WorkloadSettings s;
  s.exclude_outbound_ports = {1};
  auto st =
      apply_annotations({{"traffic.sidecar.istio.io/excludeOutboundPorts", "2"},
                         {"traffic.sidecar.istio.io/excludeOutboundIPRanges", "198.18.0.0/99"}},
                        s);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("traffic.sidecar.istio.io/excludeOutboundIPRanges"),
            std::string::npos)
      << st.error().message();
  EXPECT_EQ(s.exclude_outbound_ports, std::vector<uint16_t>{1});
}

TEST(Request, EnvironmentIsCheckedPerCommand) {
  const std::string conf = R"({"cniVersion":"1.0.0","name":"n","type":"sockmesh-cni"})";
  Env env{{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_IFNAME", "eth0"}};
  auto r = parse_request(env, conf);
  ASSERT_TRUE(std::get_if<CniError>(&r));
  EXPECT_EQ(std::get<CniError>(r).msg, "CNI_NETNS is not set");
  EXPECT_EQ(std::get<CniError>(r).code, kInvalidEnv);
  env["CNI_COMMAND"] = "DEL";  // DEL may come without a netns
  EXPECT_TRUE(std::get_if<CniRequest>(&(r = parse_request(env, conf))));
  env["CNI_COMMAND"] = "GC";
  EXPECT_EQ(std::get<CniError>(r = parse_request(env, conf)).msg,
            "CNI_COMMAND 'GC' is not supported");
  EXPECT_EQ(std::get<CniError>(r = parse_request({}, conf)).code, kInvalidEnv);
  Env check{{"CNI_COMMAND", "CHECK"},
            {"CNI_CONTAINERID", "c1"},
            {"CNI_IFNAME", "eth0"},
            {"CNI_NETNS", "/run/netns/x"}};
  EXPECT_EQ(std::get<CniError>(
                r = parse_request(check, R"({"cniVersion":"0.3.1","name":"n","type":"t"})"))
                .code,
            kIncompatibleVersion);
}

TEST(Request, AnnotationsApplyAndPodsCanBeSkipped) {
  Env env{{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_NETNS", "/run/netns/sm-pod"},
          {"CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"}};
  auto r = parse_request(env, fixture("bridge-prev-result.json"));
  ASSERT_TRUE(std::get_if<CniRequest>(&r));
  const CniRequest& req = std::get<CniRequest>(r);
  EXPECT_EQ(req.conf.settings.exclude_outbound_ports, (std::vector<uint16_t>{3306, 9999}));
  EXPECT_EQ(skip_reason(req), "");
  CniRequest sys = req;
  sys.args["K8S_POD_NAMESPACE"] = "kube-system";
  EXPECT_EQ(skip_reason(sys), "namespace kube-system is in excludeNamespaces");
  CniRequest opt_out = req;
  opt_out.conf.annotations["sockmesh.io/enroll"] = "false";
  EXPECT_EQ(skip_reason(opt_out), "annotation sockmesh.io/enroll is \"false\"");
}

TEST(PluginEntry, RoundTripsThroughTheParser) {
  WorkloadSettings s;
  s.outbound_port = 15101;
  s.proxy_gid = 2000;
  s.exclude_inbound_ports = {15020, 15021};
  s.include_cidrs = {*parse_cidr("198.18.0.0/15", "")};
  s.splice_app = true;
  Json e = plugin_entry("/sys/fs/bpf/sm-x", Mode::iptables, s);
  e["cniVersion"] = "1.0.0";
  e["name"] = "n";
  NetConf c = conf_ok(e.dump());
  EXPECT_EQ(c.pin_dir, "/sys/fs/bpf/sm-x");
  EXPECT_EQ(c.mode, Mode::iptables);
  EXPECT_EQ(c.settings.outbound_port, 15101);
  EXPECT_EQ(c.settings.gid(), 2000u);
  EXPECT_EQ(c.settings.exclude_inbound_ports, s.exclude_inbound_ports);
  EXPECT_EQ(c.settings.include_cidrs, s.include_cidrs);
  EXPECT_TRUE(c.settings.splice_app);
  EXPECT_FALSE(c.settings.fail_open);
  s.fail_open = true;
  Json open_entry = plugin_entry("/p", Mode::ebpf, s);
  open_entry["cniVersion"] = "1.0.0";
  NetConf open = conf_ok(open_entry.dump());
  EXPECT_TRUE(open.settings.fail_open);
  EXPECT_EQ(e["capabilities"]["io.kubernetes.cri.pod-annotations"], true);
}

}  // namespace
}  // namespace sm::cni
