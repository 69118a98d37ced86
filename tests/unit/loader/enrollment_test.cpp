// Enrollment bookkeeping (loader/enrollment.cpp) against a fake WorkloadStore.
#include "enrollment.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace sm {
namespace {

// An in-memory store that also records the order of writes.
class FakeStore : public WorkloadStore {
 public:
  std::map<uint64_t, sm_workload> wl;
  std::vector<sm_port_key> port_keys;
  std::vector<sm_cidr_key> cidr_keys;
  std::vector<std::string> log;
  bool fail_ports = false;

  Result<std::vector<std::pair<uint64_t, sm_workload>>> workloads() const override {
    return std::vector<std::pair<uint64_t, sm_workload>>(wl.begin(), wl.end());
  }
  Status put_workload(uint64_t c, const sm_workload& w) override {
    log.push_back("put_workload");
    wl[c] = w;
    return {};
  }
  Status erase_workload(uint64_t c) override {
    log.push_back("erase_workload");
    wl.erase(c);
    return {};
  }
  Result<std::vector<sm_port_key>> ports() const override { return port_keys; }
  Status put_port(const sm_port_key& k) override {
    if (fail_ports) return plain_error("update sm_port_v1: No space left on device");
    log.push_back("put_port");
    (void)erase_port(k);
    port_keys.push_back(k);
    return {};
  }
  Status erase_port(const sm_port_key& k) override {
    std::erase_if(port_keys, [&](const sm_port_key& x) { return !std::memcmp(&x, &k, sizeof k); });
    return {};
  }
  Result<std::vector<sm_cidr_key>> cidrs() const override { return cidr_keys; }
  Status put_cidr(const sm_cidr_key& k) override {
    log.push_back("put_cidr");
    (void)erase_cidr(k);
    cidr_keys.push_back(k);
    return {};
  }
  Status erase_cidr(const sm_cidr_key& k) override {
    std::erase_if(cidr_keys, [&](const sm_cidr_key& x) { return !std::memcmp(&x, &k, sizeof k); });
    return {};
  }
};

WorkloadSettings with_ports(std::vector<uint16_t> out, std::vector<uint16_t> in = {}) {
  WorkloadSettings s;
  s.exclude_outbound_ports = std::move(out);
  s.exclude_inbound_ports = std::move(in);
  return s;
}

TEST(Enrollment, RulesAreWrittenBeforeTheWorkloadEntry) {
  FakeStore st;
  WorkloadSettings s = with_ports({1, 2});
  s.exclude_cidrs = {*parse_cidr("198.19.0.0/16", "x")};
  ASSERT_TRUE(enroll(st, 7, 70, s));
  EXPECT_EQ(st.log, (std::vector<std::string>{"put_port", "put_port", "put_cidr", "put_workload"}));
  EXPECT_EQ(st.wl.at(7).netns_ino, 70u);
}

TEST(Enrollment, ReenrollRemovesRulesNoLongerWanted) {
  FakeStore st;
  ASSERT_TRUE(enroll(st, 7, 70, with_ports({1, 2}, {5})));
  ASSERT_TRUE(enroll(st, 8, 80, with_ports({1})));  // another workload, same port
  ASSERT_TRUE(enroll(st, 7, 70, with_ports({2})));
  auto listed = list_enrolled(st);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].settings.exclude_outbound_ports, (std::vector<uint16_t>{2}));
  EXPECT_TRUE((*listed)[0].settings.exclude_inbound_ports.empty());
  EXPECT_EQ((*listed)[1].settings.exclude_outbound_ports, (std::vector<uint16_t>{1}));
}

TEST(Enrollment, UnenrollRemovesOnlyThatWorkload) {
  FakeStore st;
  ASSERT_TRUE(enroll(st, 7, 70, with_ports({1, 2})));
  ASSERT_TRUE(enroll(st, 8, 80, with_ports({1})));
  auto was = unenroll(st, 7);
  ASSERT_TRUE(was);
  EXPECT_TRUE(*was);
  EXPECT_EQ(st.log.back(), "erase_workload");
  EXPECT_EQ(st.wl.count(7), 0u);
  ASSERT_EQ(st.port_keys.size(), 1u);
  EXPECT_EQ(st.port_keys[0].netns_cookie, 8u);
  EXPECT_FALSE(*unenroll(st, 7));
}

TEST(Enrollment, AFailedWriteLeavesTheWorkloadUnenrolled) {
  FakeStore st;
  st.fail_ports = true;
  Status s = enroll(st, 7, 70, with_ports({1}));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("sm_port_v1"), std::string::npos);
  EXPECT_TRUE(st.wl.empty());
}

TEST(Enrollment, InvalidSettingsAreRejected) {
  FakeStore st;
  WorkloadSettings s;
  s.inbound_port = s.outbound_port;
  EXPECT_FALSE(enroll(st, 7, 70, s));
  EXPECT_TRUE(st.log.empty());
}

}  // namespace
}  // namespace sm
