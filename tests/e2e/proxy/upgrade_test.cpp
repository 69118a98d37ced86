// The loader upgraded under load: `install` of a build whose BPF programs differ
// (sm-loader-next: the same sources compiled for BPF CPU v3, so every program's instructions
// change) replaces each attached program with bpf_link_update while a client keeps sending
// requests through the enrolled netns, on a keep-alive connection and on new connections.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

const std::string kVip = "198.18.2.100";

using LoaderUpgrade = ProxyMesh;

struct LoadCounts {
  uint64_t sent = 0, failed = 0, keepalive = 0, fresh = 0;
  std::string first_failure;
};

// For `seconds`, alternately one request on a kept-alive connection and one on a new
// connection. A response that says `connection: close` ends the kept-alive connection
// cleanly (nginx closes after 100 requests): the next one opens another.
LoadCounts drive(double seconds) {
  LoadCounts n;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::unique_ptr<HttpConn> kept;
  auto check = [&](const HttpResponse& r, const char* kind) {
    ++n.sent;
    if (r.status == 200) return true;
    ++n.failed;
    if (n.first_failure.empty()) n.first_failure = std::string(kind) + ": " + r.serialize();
    return false;
  };
  while (std::chrono::steady_clock::now() < end) {
    if (!kept) kept = std::make_unique<HttpConn>(kVip, 9080);
    HttpResponse r;
    if (kept->ok() && kept->send(get("reviews", "/"))) r = kept->read(3000);
    ++n.keepalive;
    if (!check(r, "keep-alive") || r.header("connection") == "close") kept.reset();
    HttpConn fresh(kVip, 9080);
    HttpResponse f;
    if (fresh.ok() && fresh.send(get("reviews", "/", "connection: close\r\n")))
      f = fresh.read(3000);
    ++n.fresh;
    check(f, "new connection");
  }
  return n;
}

int run_loader(const std::string& path, const std::string& args, std::string* out) {
  std::string cmd = path + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  while (size_t k = std::fread(buf, 1, sizeof buf, p)) out->append(buf, k);
  return ::pclose(p);
}

TEST_P(LoaderUpgrade, InstallOfChangedProgramsUnderLoadLosesNoRequest) {
  if (!ebpf()) GTEST_SKIP() << "upgrading the BPF programs is an eBPF-mode matter";
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  const std::string counts = tmp_->file("load-counts");
  Proc load(client(), [&] {
    LoadCounts n = drive(3.0);
    std::ofstream(counts) << n.sent << " " << n.failed << " " << n.keepalive << " " << n.fresh
                          << "\n"
                          << n.first_failure;
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::string next = std::string(SM_LOADER_NEXT);
  const std::string where = "--cgroup " + install_->cgroup() + " --pin-dir " + install_->pin_dir();
  std::string out;
  EXPECT_EQ(run_loader(next, "install " + where, &out), 0) << out;
  EXPECT_NE(out.find("upgraded"), std::string::npos) << out;
  // And back to this build's programs, still under load.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string back;
  EXPECT_EQ(install_->loader("install --cgroup " + install_->cgroup(), &back), 0) << back;
  EXPECT_NE(back.find("upgraded"), std::string::npos) << back;
  EXPECT_EQ(load.wait(), 0);

  std::ifstream in(counts);
  LoadCounts n;
  in >> n.sent >> n.failed >> n.keepalive >> n.fresh;
  std::getline(in >> std::ws, n.first_failure, '\0');
  std::printf(
      "loader upgrade under load: sent %llu (keep-alive %llu, new connections %llu), "
      "failed %llu\n",
      static_cast<unsigned long long>(n.sent), static_cast<unsigned long long>(n.keepalive),
      static_cast<unsigned long long>(n.fresh), static_cast<unsigned long long>(n.failed));
  RecordProperty("sent", std::to_string(n.sent));
  RecordProperty("failed", std::to_string(n.failed));
  EXPECT_GT(n.keepalive, 100u);
  EXPECT_GT(n.fresh, 100u);
  EXPECT_EQ(n.failed, 0u) << n.first_failure;
  // Every redirected connection still found its original destination.
  EXPECT_EQ(stat("listener.outbound.downstream_cx_no_destination"), 0u);
  EXPECT_EQ(install_->counter("origdst_missing"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, LoaderUpgrade, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

}  // namespace
}  // namespace sm::test
