// sockmesh-proxy's flags (userspace/proxy/options.cpp).
#include "proxy/options.h"

#include <gtest/gtest.h>

namespace sm::proxy {
namespace {

std::string err(std::vector<std::string> a) {
  auto r = parse_options(a);
  return r ? "<ok>" : r.error().message();
}

TEST(Options, DefaultsFollowDesign) {
  auto o = parse_options({});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->outbound_port, 15001);
  EXPECT_EQ(o->inbound_port, 15006);
  EXPECT_EQ(o->admin_port, 15000);
  EXPECT_GE(o->workers, 1u);
  EXPECT_EQ(o->limits.max_head_bytes, 60u * 1024);
  EXPECT_TRUE(o->access_log.empty());
  EXPECT_EQ(o->max_connections, 0u) << "0: from the open-files limit";
  EXPECT_EQ(o->stream_idle_timeout.count(), 300'000) << "Envoy's stream_idle_timeout";
  EXPECT_EQ(o->tunnel_idle_timeout.count(), 3'600'000) << "Envoy's TCP proxy idle_timeout";
}

TEST(Options, AllFlags) {
  auto o = parse_options({"--outbound-port",
                          "16001",
                          "--inbound-port=16006",
                          "--admin-port",
                          "16000",
                          "--workers",
                          "3",
                          "--config",
                          "/etc/r.json",
                          "--uid",
                          "1337",
                          "--gid=1338",
                          "--access-log",
                          "-",
                          "--max-request-headers-kb",
                          "8",
                          "--max-headers",
                          "20",
                          "--sniff-timeout-ms",
                          "50",
                          "--request-headers-timeout-ms",
                          "500",
                          "--idle-timeout-ms",
                          "1000",
                          "--upstream-idle-timeout-ms",
                          "2000",
                          "--connect-timeout-ms",
                          "300",
                          "--buffer-limit-kb",
                          "64",
                          "--recv-buffers",
                          "256",
                          "--max-connections",
                          "5000",
                          "--stream-idle-timeout-ms",
                          "0",
                          "--tunnel-idle-timeout-ms=60000",
                          "-v"});
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->outbound_port, 16001);
  EXPECT_EQ(o->inbound_port, 16006);
  EXPECT_EQ(o->admin_port, 16000);
  EXPECT_EQ(o->workers, 3u);
  EXPECT_EQ(o->config_path, "/etc/r.json");
  EXPECT_EQ(*o->uid, 1337u);
  EXPECT_EQ(*o->gid, 1338u);
  EXPECT_EQ(o->access_log, "-");
  EXPECT_EQ(o->limits.max_head_bytes, 8u * 1024);
  EXPECT_LE(o->limits.max_start_line, o->limits.max_head_bytes);
  EXPECT_EQ(o->limits.max_headers, 20u);
  EXPECT_EQ(o->sniff_timeout.count(), 50);
  EXPECT_EQ(o->request_headers_timeout.count(), 500);
  EXPECT_EQ(o->idle_timeout.count(), 1000);
  EXPECT_EQ(o->upstream_idle_timeout.count(), 2000);
  EXPECT_EQ(o->connect_timeout.count(), 300);
  EXPECT_EQ(o->buffer_limit, 64u * 1024);
  EXPECT_EQ(o->recv_buffers, 256u);
  EXPECT_EQ(o->max_connections, 5000u);
  EXPECT_EQ(o->stream_idle_timeout.count(), 0) << "0 turns it off";
  EXPECT_EQ(o->tunnel_idle_timeout.count(), 60'000);
  EXPECT_TRUE(o->verbose);
}

TEST(Options, ErrorsNameTheFlag) {
  EXPECT_EQ(err({"--bogus"}), "unknown flag --bogus (see --help)");
  EXPECT_EQ(err({"--outbound-port", "0"}), "--outbound-port: '0': port must be 1..65535");
  EXPECT_EQ(err({"--workers", "0"}), "--workers: '0': must be 1..256");
  EXPECT_EQ(err({"--workers", "two"}), "--workers: 'two': not a number");
  EXPECT_EQ(err({"--config"}), "--config: missing value");
  EXPECT_EQ(err({"--inbound-port", "15001"}),
            "--outbound-port, --inbound-port and --admin-port must all differ");
  EXPECT_EQ(err({"--recv-buffers", "1"}), "--recv-buffers: '1': must be 16..32768");
  EXPECT_EQ(err({"--max-connections", "-1"}), "--max-connections: '-1': not a number");
}

// Issue 8, item 8: dropping only the group would leave the proxy running as root.
TEST(Options, GidWithoutUidIsRefused) {
  EXPECT_EQ(err({"--gid", "1337"}), "--gid: needs --uid (the user to run as)");
  EXPECT_EQ(err({"--uid", "1337"}), "<ok>");
  EXPECT_EQ(err({"--uid", "1337", "--gid", "1338"}), "<ok>");
}

// Issue 12: io_uring by default, epoll where it is blocked, or either one by name.
TEST(Options, EventLoop) {
  EXPECT_EQ(parse_options({})->event_loop, EventLoop::automatic);
  EXPECT_EQ(parse_options({"--event-loop", "epoll"})->event_loop, EventLoop::epoll);
  EXPECT_EQ(parse_options({"--event-loop=uring"})->event_loop, EventLoop::uring);
  EXPECT_EQ(parse_options({"--event-loop", "auto"})->event_loop, EventLoop::automatic);
  EXPECT_EQ(err({"--event-loop", "poll"}), "--event-loop: 'poll': must be uring, epoll or auto");
}

// Issue 12: a pod's readiness probe comes from the kubelet, to the pod IP.
TEST(Options, AdminAddress) {
  EXPECT_EQ(parse_options({})->admin_address.str(), "127.0.0.1");
  EXPECT_EQ(parse_options({"--admin-address", "0.0.0.0"})->admin_address.str(), "0.0.0.0");
  EXPECT_EQ(parse_options({"--admin-address=2001:2::5"})->admin_address.str(), "2001:2::5");
  EXPECT_NE(err({"--admin-address", "pod-ip"}).find("--admin-address: 'pod-ip'"), std::string::npos)
      << err({"--admin-address", "pod-ip"});
}

// Issue 10: the seed's sidecars ran with --zipkinAddress zipkin:9411.
TEST(Options, Tracing) {
  EXPECT_EQ(parse_options({})->zipkin_address, "");
  EXPECT_EQ(parse_options({})->trace_sampling, 1.0);  // Istio's default
  EXPECT_EQ(parse_options({"--zipkin-address", "zipkin:9411"})->zipkin_address, "zipkin:9411");
  EXPECT_EQ(parse_options({"--zipkin-address=[2001:2::3]:9411"})->zipkin_address,
            "[2001:2::3]:9411");
  EXPECT_EQ(parse_options({"--trace-sampling", "100"})->trace_sampling, 100.0);
  EXPECT_EQ(parse_options({"--trace-sampling", "0.5"})->trace_sampling, 0.5);
  for (const char* bad : {"zipkin", "zipkin:", ":9411", "zipkin:0", "2001:2::3:9411"})
    EXPECT_EQ(err({"--zipkin-address", bad}),
              std::string("--zipkin-address: '") + bad + "': expected host:port or [ipv6]:port");
  for (const char* bad : {"101", "-1", "1%", "", "nan"})
    EXPECT_EQ(err({"--trace-sampling", bad}),
              std::string("--trace-sampling: '") + bad + "': must be a percentage 0..100");
}

// Envoy's defaults in the seed's sidecar: --drain-time-s 2 --parent-shutdown-time-s 3.
TEST(Options, DrainAndHotRestart) {
  auto d = parse_options({});
  EXPECT_EQ(d->drain_time, std::chrono::seconds(2));
  EXPECT_EQ(d->parent_shutdown_time, std::chrono::seconds(3));
  EXPECT_EQ(d->restart_epoch, 0u);
  EXPECT_EQ(d->base_id, 0u);
  auto o = parse_options({"--drain-time-s", "0", "--parent-shutdown-time-s=10", "--restart-epoch",
                          "3", "--base-id", "7"});
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->drain_time, std::chrono::seconds(0));
  EXPECT_EQ(o->parent_shutdown_time, std::chrono::seconds(10));
  EXPECT_EQ(o->restart_epoch, 3u);
  EXPECT_EQ(o->base_id, 7u);
  EXPECT_EQ(err({"--drain-time-s", "x"}).rfind("--drain-time-s", 0), 0u);
  EXPECT_EQ(err({"--drain-time-s", "3601"}), "--drain-time-s: '3601': must be 0..3600");
  EXPECT_EQ(err({"--restart-epoch", "-1"}).rfind("--restart-epoch", 0), 0u);
}

}  // namespace
}  // namespace sm::proxy
