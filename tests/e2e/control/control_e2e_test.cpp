// The control plane end to end, in both interception modes: Consul registrations reach the
// sidecar's clusters within a second; an index reset and 500s lose nothing; Consul killed,
// routes keep serving, and a restarted sidecar serves from --state-dir; Istio rules from a
// file and from Consul KV take effect, and a bad rule is refused while the old one serves.
// Clients dial one server's address and name a service in Host: where the request lands
// shows which table routed it.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "control_mesh.h"

namespace sm::test {
namespace {

std::string istio_file(const std::string& rel) {
  return slurp(std::string(SM_ISTIO_DIR) + "/" + rel);
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

size_t access_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

const std::string kReviews = "outbound|9080||reviews.service.consul";

class ControlE2E : public ControlMesh {
 protected:
  void start_reviews() {
    start_py_http(*srv1_, kSrv1, 9080, "reviews-v1");
    start_py_http(*srv2_, kSrv2, 9080, "reviews-v2");
  }
};

TEST_P(ControlE2E, RegisteringAndDeregisteringChangesClustersWithinASecond) {
  start_reviews();
  start_consul();
  register_instance("reviews-v1", "reviews", kSrv1, 9080, "v1");
  start_control_proxy();
  ASSERT_GE(wait_clusters([](const std::string& c) { return has(c, kReviews + "::" + kSrv1); }), 0);
  // Dialling srv2 with Host reviews: the table sends it to the only instance, v1 on srv1.
  EXPECT_EQ(who(kSrv2, 9080, "reviews.service.consul:9080"), "reviews-v1");

  register_instance("reviews-v2", "reviews", kSrv2, 9080, "v2");
  const int added = wait_clusters([](const std::string& c) {
    return has(c, kReviews + "::" + kSrv2 + ":9080::") &&
           has(c, "outbound|9080|v2|reviews.service.consul::" + kSrv2);
  });
  EXPECT_GE(added, 0) << admin("/clusters");
  EXPECT_LT(added, 1000);

  deregister("reviews-v1");
  const int removed =
      wait_clusters([](const std::string& c) { return !has(c, kReviews + "::" + kSrv1); });
  EXPECT_GE(removed, 0) << admin("/clusters");
  EXPECT_LT(removed, 1000);
  EXPECT_EQ(who(kSrv1, 9080, "reviews:9080"), "reviews-v2");
  EXPECT_GT(stat("control_plane.publishes"), 2u);
  EXPECT_NE(admin("/stats/prometheus").body.find("sockmesh_consul_propagation_ms_count"),
            std::string::npos);
}

TEST_P(ControlE2E, IndexResetAndServerErrorsLoseNothing) {
  start_reviews();
  start_consul();
  if (real_consul()) GTEST_SKIP() << "needs the Consul double's controls (500s, index reset)";
  register_instance("reviews-v1", "reviews", kSrv1, 9080, "v1");
  start_control_proxy("--consul-wait-s 1");  // queries in flight come back soon
  ASSERT_GE(wait_clusters([](const std::string& c) { return has(c, kReviews + "::" + kSrv1); }), 0);

  consul_post("/_double/fail?status=500");
  for (int i = 0; i < 150 && stat("control_plane.consul_watches_failing") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GT(stat("control_plane.consul_watches_failing"), 0u);
  EXPECT_TRUE(has(admin("/ready").body, "unreachable")) << admin("/ready");
  register_instance("reviews-v2", "reviews", kSrv2, 9080, "v2");  // while reads fail
  EXPECT_EQ(who(kSrv2, 9080, "reviews"), "reviews-v1");           // the last good table
  consul_post("/_double/clear");
  EXPECT_GE(wait_clusters([](const std::string& c) { return has(c, kReviews + "::" + kSrv2); }), 0)
      << admin("/clusters");

  // A snapshot restore: every index goes backwards. A change after it still arrives.
  consul_post("/_double/reset_index");
  deregister("reviews-v1");
  EXPECT_GE(wait_clusters([](const std::string& c) { return !has(c, kReviews + "::" + kSrv1); }), 0)
      << admin("/clusters");
  EXPECT_EQ(who(kSrv1, 9080, "reviews"), "reviews-v2");
  EXPECT_GT(stat("control_plane.consul_errors"), 0u);
  // Every watch comes back, each after its own jittered back-off (at most 5 s).
  for (int i = 0; i < 400 && stat("control_plane.consul_watches_failing") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(stat("control_plane.consul_watches_failing"), 0u);
}

TEST_P(ControlE2E, ConsulKilledRoutesKeepServingAndARestartServesTheStateDir) {
  start_reviews();
  start_consul();
  register_instance("reviews-v1", "reviews", kSrv1, 9080, "v1");
  start_control_proxy();
  ASSERT_GE(wait_clusters([](const std::string& c) { return has(c, kReviews + "::" + kSrv1); }), 0);
  const std::string saved = state_dir() + "/routes.json";
  for (int i = 0; i < 150 && ::access(saved.c_str(), R_OK) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(::access(saved.c_str(), R_OK), 0) << "no table saved in --state-dir";

  kill_consul();
  for (int i = 0; i < 150 && !has(admin("/ready").body, "unreachable"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  HttpResponse ready = admin("/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_TRUE(has(ready.body, "LIVE\nconsul 127.0.0.1:8500: unreachable")) << ready.body;
  EXPECT_EQ(who(kSrv2, 9080, "reviews"), "reviews-v1");  // routed by the last good table

  stop_control_proxy();
  start_control_proxy();  // Consul still away
  ready = admin("/ready");
  EXPECT_TRUE(has(ready.body, "serving the last good table saved in --state-dir")) << ready.body;
  EXPECT_TRUE(has(admin("/config_dump?format=sockmesh").body, "\"source\": \"state-dir\""));
  EXPECT_EQ(who(kSrv2, 9080, "reviews"), "reviews-v1");
}

TEST_P(ControlE2E, RulesFromAFileAndFromKvTakeEffectAndABadRuleIsRefused) {
  start_reviews();
  start_py_http(*srv1_, kSrv1, 9090, "details-v1");
  start_py_http(*srv2_, kSrv2, 9090, "details-v2");
  start_consul();
  register_instance("reviews-v1", "reviews", kSrv1, 9080, "v1");
  register_instance("reviews-v2", "reviews", kSrv2, 9080, "v2");
  register_instance("details-v1", "details", kSrv1, 9090, "v1");
  register_instance("details-v2", "details", kSrv2, 9090, "v2");
  // details: from a file, everything to v2 (Istio's own DestinationRule for the subsets).
  const std::string rules = tmp_->file("rules");
  ::mkdir(rules.c_str(), 0755);
  tmp_->write("rules/destination-rule-all.yaml", istio_file("bookinfo/destination-rule-all.yaml"));
  tmp_->write("rules/details.yaml", R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details.service.consul
  http:
  - route:
    - destination:
        host: details.service.consul
        subset: v2
)");
  // reviews: from Consul KV, Istio's reviews-test-v2 (jason -> v2, everyone else -> v1).
  consul_put("/v1/kv/sockmesh/rules/reviews",
             istio_file("bookinfo/virtual-service-reviews-test-v2.yaml"));
  start_control_proxy("--rules " + rules + " --rules-kv sockmesh/rules/");
  for (int i = 0; i < 150 && who(kSrv1, 9090, "details:9090") != "details-v2"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(who(kSrv1, 9090, "details.service.consul:9090"), "details-v2");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(who(kSrv2, 9080, "reviews.service.consul:9080"), "reviews-v1");
    EXPECT_EQ(who(kSrv1, 9080, "reviews:9080", "end-user: jason\r\n"), "reviews-v2");
  }

  // A bad edit in KV: refused with the reason, the previous reviews rule keeps serving.
  consul_put("/v1/kv/sockmesh/rules/reviews",
             "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata:\n  "
             "name: reviews\nspec:\n  hosts: [reviews.service.consul]\n  http:\n  - route:\n    - "
             "destination: {host: reviews.service.consul, subset: v2}\n      weight: lots\n");
  for (int i = 0; i < 150 && stat("control_plane.rules_rejected") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(stat("control_plane.rules_rejected"), 1u);
  EXPECT_TRUE(has(admin("/ready").body,
                  "rules kv sockmesh/rules/reviews refused (previous rules kept): kv "
                  "sockmesh/rules/reviews#1 VirtualService reviews: "
                  "spec.http[0].route[0].weight: must be an integer 0..100"))
      << admin("/ready");
  EXPECT_EQ(who(kSrv1, 9080, "reviews"), "reviews-v1");
  EXPECT_EQ(who(kSrv1, 9080, "reviews", "end-user: jason\r\n"), "reviews-v2");

  // A bad edit of the file: the same.
  tmp_->write("rules/details.yaml",
              "apiVersion: networking.istio.io/v1beta1\nkind: "
              "VirtualService\nmetadata: {name: details}\nspec: {hosts: [details], "
              "http: [{route: [{destination: {host: details, subsett: v1}}]}]}\n");
  for (int i = 0; i < 150 && stat("control_plane.rules_rejected") < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(stat("control_plane.rules_rejected"), 2u);
  EXPECT_EQ(who(kSrv1, 9090, "details"), "details-v2");
}

// Istio's fault injection through the data path: over N requests the delay and abort
// fractions hold within a generous statistical bound (each is a binomial draw: 4.5 standard
// deviations, so a correct proxy fails about once in 150,000 runs), every delayed response
// took the delay, and the counters match what the client saw.
TEST_P(ControlE2E, FaultDelayAndAbortPercentagesHoldStatistically) {
  start_reviews();
  start_consul();
  register_instance("reviews-v1", "reviews", kSrv1, 9080, "v1");
  const std::string rules = tmp_->file("faults.yaml");
  tmp_->write("faults.yaml", R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews.service.consul
  http:
  - fault:
      delay:
        percentage:
          value: 20
        fixedDelay: 100ms
      abort:
        percentage:
          value: 25
        httpStatus: 503
    route:
    - destination:
        host: reviews.service.consul
)");
  const std::string log = tmp_->file("access.log");
  start_control_proxy("--rules " + rules + " --access-log " + log);
  auto get = [&] {
    return http(kSrv2, 9080,
                "GET / HTTP/1.1\r\nHost: reviews.service.consul:9080\r\nConnection: close\r\n\r\n");
  };
  for (int i = 0; i < 150 && stat("listener.outbound.fault.aborts_injected") == 0; ++i) get();
  ASSERT_GT(stat("listener.outbound.fault.aborts_injected"), 0u) << "the fault rule never applied";
  const uint64_t delays0 = stat("listener.outbound.fault.delays_injected");
  const uint64_t aborts0 = stat("listener.outbound.fault.aborts_injected");
  const std::string log0 = slurp(log);

  constexpr int kN = 200;
  int aborted = 0, served = 0, slow = 0;
  for (int i = 0; i < kN; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    HttpResponse r = get();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (ms >= 100) ++slow;
    if (r.status == 503 && r.body == "fault filter abort")
      ++aborted;
    else if (r.status == 200 && r.body.rfind("reviews-v1", 0) == 0)
      ++served;
    else
      ADD_FAILURE() << "unexpected response: " << r;
  }
  const uint64_t delays = stat("listener.outbound.fault.delays_injected") - delays0;
  const uint64_t aborts = stat("listener.outbound.fault.aborts_injected") - aborts0;
  EXPECT_EQ(aborted + served, kN);
  EXPECT_EQ(aborts, static_cast<uint64_t>(aborted)) << "the counter matches what clients saw";
  EXPECT_GE(static_cast<uint64_t>(slow), delays) << "every injected delay was felt";
  // 20% of 200 = 40 (sd 5.7); 25% = 50 (sd 6.1).
  EXPECT_GE(delays, 14u);
  EXPECT_LE(delays, 66u);
  EXPECT_GE(aborted, 22);
  EXPECT_LE(aborted, 78);
  // The access log flags each one: DI for a delay, FI for an abort (DI,FI for both).
  for (int i = 0; i < 100 && access_lines(slurp(log)) < access_lines(log0) + kN; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string tail = slurp(log).substr(log0.size());
  size_t di = 0, fi = 0;
  for (size_t p = tail.find("\"response_flags\":\""); p != std::string::npos;
       p = tail.find("\"response_flags\":\"", p + 1)) {
    const std::string flags = tail.substr(p + 18, tail.find('"', p + 18) - (p + 18));
    di += flags.find("DI") != std::string::npos;
    fi += flags.find("FI") != std::string::npos;
  }
  EXPECT_EQ(di, delays);
  EXPECT_EQ(fi, aborts);
}

INSTANTIATE_TEST_SUITE_P(Modes, ControlE2E, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

}  // namespace
}  // namespace sm::test
