// sockmesh-loader agent, run as the DaemonSet runs it (a child process with a status
// file), against a real install in an sm-* cgroup and pin dir: it installs at start,
// repairs a removed link and map pin, unenrolls a workload whose netns is gone, and on
// SIGTERM exits leaving interception working.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "harness.h"

namespace sm::test {
namespace {

constexpr uid_t kProxyUid = 1337;
constexpr uid_t kAppUid = 1000;
const std::string kApp = "198.18.2.2";
const std::string kSrv = "198.18.2.3";

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// Polls cond every 100 ms; false after timeout_ms.
bool eventually(const std::function<bool()>& cond, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

// Stops a child (SIGSTOP, by pid) for the scope: nothing it does races the test.
class Paused {
 public:
  explicit Paused(const Proc& p) : pid_(p.pid()) { ::kill(pid_, SIGSTOP); }
  ~Paused() { ::kill(pid_, SIGCONT); }
  Paused(const Paused&) = delete;
  Paused& operator=(const Paused&) = delete;

 private:
  pid_t pid_;
};

class Agent : public ::testing::Test {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    cg_ = std::make_unique<Cgroup>(unique_name("cg"));
    pin_dir_ = "/sys/fs/bpf/" + unique_name("pin");
    dir_ = std::make_unique<TempDir>("agent");
    status_ = dir_->file("run/agent.status");
  }
  void TearDown() override {
    agent_ = Proc();  // killed by pid if still running
    if (!pin_dir_.empty()) sh(loader_path() + " uninstall --pin-dir " + pin_dir_);
    if (HasFailure() && dir_) std::cerr << "agent log:\n" << slurp(dir_->file("agent.log"));
  }

  void start_agent() {
    agent_ = spawn(Place(),
                   {loader_path(), "agent", "--cgroup", cg_->path(), "--pin-dir", pin_dir_,
                    "--status-file", status_, "--interval", "1"},
                   dir_->file("agent.log"));
    ASSERT_TRUE(eventually([&] { return first_line(slurp(status_)) == "ready"; }))
        << slurp(status_) << slurp(dir_->file("agent.log"));
  }
  std::string loader(const std::string& args) {
    std::string out;
    int rc = sh(loader_path() + " " + args + " --pin-dir " + pin_dir_, &out);
    EXPECT_EQ(rc, 0) << args << ": " << out;
    return out;
  }
  Place place(const Netns& ns, std::optional<uid_t> uid = {}) const {
    Place p = Place::in(ns, uid);
    p.cgroup = cg_->path();
    return p;
  }
  // An enrolled app netns with a fake sidecar, and a real server next to it.
  void start_mesh() {
    net_ = std::make_unique<TestNet>();
    app_ = &net_->add_host("app", kApp + "/24");
    srv_ = &net_->add_host("srv", kSrv + "/24");
    procs_.push_back(serve(Place::in(*srv_), [] { return serve_direct("0.0.0.0", 9080, "srv"); }));
    procs_.push_back(serve(place(*app_, kProxyUid), [] { return serve_origdst(15001); }));
    loader("enroll --netns " + app_->path());
  }
  std::string from_app() { return connect_line(place(*app_, kAppUid), kSrv, 9080); }
  bool intercepted() { return from_app().rfind("ORIG " + kSrv + ":9080 ", 0) == 0; }

  std::unique_ptr<Cgroup> cg_;
  std::string pin_dir_;
  std::unique_ptr<TempDir> dir_;
  std::string status_;
  Proc agent_;
  std::unique_ptr<TestNet> net_;
  Netns* app_ = nullptr;
  Netns* srv_ = nullptr;
  std::vector<Proc> procs_;
};

TEST_F(Agent, StartInstallsAndReportsReady) {
  EXPECT_FALSE(exists(pin_dir_));
  start_agent();
  for (const char* link : {"sk_msg", "sockops", "getsockopt", "setsockopt", "getpeername4",
                           "getpeername6", "connect4", "connect6"})
    EXPECT_TRUE(exists(pin_dir_ + "/links/" + link)) << link;
  std::string status = loader("status --json");
  EXPECT_NE(status.find("\"installed\": true"), std::string::npos) << status;
  // The file is rewritten every pass (the liveness probe's contract).
  struct stat before {};
  ASSERT_EQ(::stat(status_.c_str(), &before), 0);
  EXPECT_TRUE(eventually([&] {
    struct stat now {};
    return ::stat(status_.c_str(), &now) == 0 && (now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                                                  now.st_mtim.tv_nsec != before.st_mtim.tv_nsec);
  }));
}

TEST_F(Agent, StartOverAnExistingInstallChangesNothingAndKeepsWorkloads) {
  ASSERT_EQ(sh(loader_path() + " install --cgroup " + cg_->path() + " --pin-dir " + pin_dir_), 0);
  start_mesh();
  ASSERT_TRUE(intercepted()) << from_app();
  start_agent();
  EXPECT_TRUE(intercepted()) << from_app();
  std::string log = slurp(dir_->file("agent.log"));
  EXPECT_EQ(log.find(" attached"), std::string::npos) << log;
}

TEST_F(Agent, RemovedLinkAndMapPinsAreRestoredWithTheirContents) {
  start_agent();
  start_mesh();
  ASSERT_TRUE(intercepted()) << from_app();
  {
    Paused paused(agent_);  // so the damage is seen before the agent repairs it
    // Unpinning the last reference to a link detaches it (the kernel frees it from a
    // work queue, so a moment later): connect4 no longer redirects.
    ASSERT_EQ(::unlink((pin_dir_ + "/links/connect4").c_str()), 0);
    ASSERT_EQ(::unlink((pin_dir_ + "/maps/sm_netns_v1").c_str()), 0);
    ASSERT_TRUE(eventually([&] { return from_app() == "DIRECT srv"; }, 5000)) << from_app();
  }
  EXPECT_TRUE(eventually([&] {
    return exists(pin_dir_ + "/links/connect4") && exists(pin_dir_ + "/maps/sm_netns_v1");
  }));
  // The workload entry survived: the same map was pinned again, not a new empty one.
  EXPECT_TRUE(eventually([&] { return intercepted(); })) << from_app();
  std::string log = slurp(dir_->file("agent.log"));
  EXPECT_NE(log.find("map sm_netns_v1 was unpinned: pinned again"), std::string::npos) << log;
  EXPECT_NE(log.find("link connect4 attached"), std::string::npos) << log;
  EXPECT_TRUE(eventually([&] { return first_line(slurp(status_)) == "ready"; }));
}

TEST_F(Agent, DetachedLinkIsAttachedAgain) {
  start_agent();
  start_mesh();
  ASSERT_TRUE(intercepted()) << from_app();
  {
    Paused paused(agent_);
    ASSERT_EQ(sh("bpftool link detach pinned " + pin_dir_ + "/links/connect4"), 0);
    ASSERT_TRUE(eventually([&] { return from_app() == "DIRECT srv"; }, 5000))  // pinned, detached
        << from_app();
  }
  EXPECT_TRUE(eventually([&] { return intercepted(); })) << from_app();
  std::string log = slurp(dir_->file("agent.log"));
  EXPECT_NE(log.find("link connect4 was detached"), std::string::npos) << log;
}

TEST_F(Agent, WorkloadOfAGoneNetnsIsUnenrolled) {
  start_agent();
  auto ns = std::make_unique<Netns>(unique_name("gone"));
  loader("enroll --netns " + ns->path());
  std::string links = pin_dir_ + "/links";
  auto inbound_pins = [&] {
    std::string out;
    sh("ls " + links + " | grep -c '^inbound_' || true", &out);
    return out;
  };
  ASSERT_EQ(inbound_pins(), "1\n");
  ns.reset();  // the netns goes; its sk_lookup link turns defunct
  EXPECT_TRUE(eventually([&] { return inbound_pins() == "0\n"; }, 15000))
      << slurp(dir_->file("agent.log"));
  EXPECT_TRUE(eventually([&] { return slurp(status_).find("workloads 0\n") != std::string::npos; }))
      << slurp(status_);
  EXPECT_NE(slurp(dir_->file("agent.log")).find("is gone: unenrolled"), std::string::npos);
}

TEST_F(Agent, SigtermExitsAndLeavesInterceptionWorking) {
  start_agent();
  start_mesh();
  ASSERT_TRUE(intercepted()) << from_app();
  ASSERT_EQ(::kill(agent_.pid(), SIGTERM), 0);
  EXPECT_EQ(agent_.wait(), 0);
  EXPECT_EQ(first_line(slurp(status_)), "stopped");
  EXPECT_TRUE(intercepted()) << from_app();
  EXPECT_TRUE(exists(pin_dir_ + "/links/connect4"));
  // A new agent takes over the same install without touching a link.
  start_agent();
  EXPECT_TRUE(intercepted()) << from_app();
}

TEST_F(Agent, ChainsSockmeshCniOnceTheNodeHasANetworkConfig) {
  std::string bin = dir_->file("opt/cni/bin"), conf = dir_->file("etc/cni/net.d");
  ASSERT_EQ(sh("mkdir -p " + bin + " " + conf), 0);
  agent_ = spawn(
      Place(),
      {loader_path(), "agent", "--cgroup", cg_->path(), "--pin-dir", pin_dir_, "--status-file",
       status_, "--interval", "1", "--cni-bin-dir", bin, "--cni-conf-dir", conf, "--cni-plugin",
       std::filesystem::absolute(build_dir() + "/bin/sockmesh-cni").string(),
       "--exclude-inbound-ports", "15000,15020"},
      dir_->file("agent.log"));
  // No network plugin config yet: installed, but not ready (pods could not be enrolled).
  EXPECT_TRUE(eventually([&] {
    return first_line(slurp(status_)).rfind("degraded: no CNI network config in " + conf, 0) == 0;
  })) << slurp(status_);
  std::string list = conf + "/10-sm-podnet.conflist";
  dir_->write("etc/cni/net.d/10-sm-podnet.conflist",
              R"({"cniVersion":"1.0.0","name":"sm-podnet","plugins":[{"type":"bridge"}]})");
  EXPECT_TRUE(eventually([&] { return first_line(slurp(status_)) == "ready"; })) << slurp(status_);
  std::string chained = slurp(list);
  EXPECT_NE(chained.find("\"type\": \"sockmesh-cni\""), std::string::npos) << chained;
  EXPECT_NE(chained.find("\"excludeInboundPorts\": \"15000,15020\""), std::string::npos) << chained;
  EXPECT_NE(chained.find("\"pinDir\": \"" + pin_dir_ + "\""), std::string::npos) << chained;
  std::string out;
  EXPECT_EQ(sh("echo '{}' | CNI_COMMAND=VERSION " + bin + "/sockmesh-cni", &out), 0) << out;
  // Uninstall with the CNI dirs takes the entry and the binary away again.
  agent_ = Proc();
  EXPECT_EQ(sh(loader_path() + " uninstall --pin-dir " + pin_dir_ + " --cni-bin-dir " + bin +
                   " --cni-conf-dir " + conf,
               &out),
            0)
      << out;
  EXPECT_EQ(slurp(list).find("sockmesh-cni"), std::string::npos) << slurp(list);
  EXPECT_FALSE(exists(bin + "/sockmesh-cni"));
}

TEST_F(Agent, BadIntervalIsNamed) {
  std::string out;
  EXPECT_EQ(sh(loader_path() + " agent --interval 30", &out), 2);
  EXPECT_NE(out.find("--interval: '30': must be 1..10 seconds"), std::string::npos) << out;
}

}  // namespace
}  // namespace sm::test
