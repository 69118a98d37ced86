// Protocol sniffing (userspace/proxy/sniff.cpp).
#include "proxy/sniff.h"

#include <gtest/gtest.h>

namespace sm::proxy {
namespace {

TEST(Sniff, Http1Requests) {
  for (const char* r : {"GET / HTTP/1.1\r\n", "POST /x", "DELETE ", "M-SEARCH * HTTP/1.1",
                        "PROPFIND /", "CONNECT reviews:9080 HTTP/1.1"})
    EXPECT_EQ(sniff(r), Sniff::http1) << r;
}

TEST(Sniff, DecidesAsSoonAsPossible) {
  EXPECT_EQ(sniff(""), Sniff::need_more);
  EXPECT_EQ(sniff("GE"), Sniff::need_more);
  EXPECT_EQ(sniff("GET"), Sniff::need_more);
  EXPECT_EQ(sniff("g"), Sniff::opaque);  // methods are upper case
}

TEST(Sniff, OpaqueProtocols) {
  EXPECT_EQ(sniff(std::string_view("\x16\x03\x01\x02\x00", 5)), Sniff::opaque);  // TLS
  EXPECT_EQ(sniff("*1\r\n$4\r\nPING\r\n"), Sniff::opaque);                       // Redis
  EXPECT_EQ(sniff(" GET"), Sniff::opaque);
  EXPECT_EQ(sniff("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), Sniff::opaque);  // too long for a method
}

TEST(Sniff, Http2PriorKnowledgeIsOpaque) {
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Sniff::opaque);
  EXPECT_EQ(sniff("PRI * HT"), Sniff::need_more);
  EXPECT_EQ(sniff("PRI /x HTTP/1.1"), Sniff::http1);  // an extension method named PRI
}

}  // namespace
}  // namespace sm::proxy
