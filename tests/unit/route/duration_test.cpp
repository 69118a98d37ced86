// duration.h: protobuf JSON durations, as Envoy and Istio print them.
#include "route/duration.h"

#include <gtest/gtest.h>

namespace sm::route {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(ProtobufDuration, ParsesWholeAndFractionalSeconds) {
  EXPECT_EQ(*parse_duration("15s", "t"), seconds(15));
  EXPECT_EQ(*parse_duration("0s", "t"), Duration(0));
  EXPECT_EQ(*parse_duration("0.5s", "t"), milliseconds(500));
  EXPECT_EQ(*parse_duration("0.250s", "t"), milliseconds(250));
  EXPECT_EQ(*parse_duration("1.000000001s", "t"), nanoseconds(1'000'000'001));
}

TEST(ProtobufDuration, RejectsOtherSpellingsNamingTheField) {
  for (const char* bad : {"15", "15ms", "-1s", "1.s", ".5s", "1.0000000001s", "s", "", "1e3s",
                          " 1s", "99999999999s"}) {
    auto d = parse_duration(bad, "route.timeout");
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.error().message().rfind("route.timeout: '", 0), 0u) << d.error().message();
  }
}

TEST(ProtobufDuration, FormatsCanonically) {
  EXPECT_EQ(format_duration(seconds(15)), "15s");
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(500)), "0.500s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1.500s");
  EXPECT_EQ(format_duration(std::chrono::microseconds(1)), "0.000001s");
  EXPECT_EQ(format_duration(nanoseconds(1'000'000'001)), "1.000000001s");
}

TEST(ProtobufDuration, FormatThenParseIsIdentity) {
  for (int64_t ns :
       {0ll, 1ll, 999ll, 1'000ll, 250'000'000ll, 15'000'000'000ll, 3'600'000'000'123ll}) {
    EXPECT_EQ(*parse_duration(format_duration(Duration(ns)), "t"), Duration(ns)) << ns;
  }
}

}  // namespace
}  // namespace sm::route
