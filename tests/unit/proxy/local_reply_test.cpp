// local_reply.h: every local reply has one shape, and the flags carry Envoy's names.
#include "proxy/local_reply.h"

#include <gtest/gtest.h>

namespace sm::proxy {
namespace {

TEST(LocalReply, HasStatusLengthTypeServerRequestIdAndClose) {
  std::string out;
  write_local_reply(out, {503, reply::kNoHealthyUpstream, ResponseFlag::no_healthy_upstream},
                    "abc-123", true);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n"
            "content-type: text/plain\r\nserver: sockmesh\r\nx-request-id: abc-123\r\n"
            "connection: close\r\n\r\nno healthy upstream");
  out.clear();
  write_local_reply(out, {404, "", ResponseFlag::no_route}, "", false);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ncontent-type: text/plain\r\n"
            "server: sockmesh\r\n\r\n");
}

TEST(LocalReply, FlagsAreEnvoysNames) {
  EXPECT_STREQ(flag_name(ResponseFlag::none), "-");
  EXPECT_STREQ(flag_name(ResponseFlag::no_healthy_upstream), "UH");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_connect_failure), "UF");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_overflow), "UO");
  EXPECT_STREQ(flag_name(ResponseFlag::no_route), "NR");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_request_timeout), "UT");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_reset), "UR");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_connection_termination), "UC");
  EXPECT_STREQ(flag_name(ResponseFlag::upstream_protocol_error), "UPE");
  EXPECT_STREQ(flag_name(ResponseFlag::downstream_protocol_error), "DPE");
  EXPECT_STREQ(flag_name(ResponseFlag::downstream_connection_termination), "DC");
  EXPECT_STREQ(flag_name(ResponseFlag::stream_idle_timeout), "SI");
}

}  // namespace
}  // namespace sm::proxy
