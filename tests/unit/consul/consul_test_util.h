// Shared helpers for the Consul unit tests: fixture files and the Consul double on loopback.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sm::consul::test {

inline std::string consul_dir() {
  return SM_CONSUL_DIR;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string fixture(const std::string& name) {
  return read_file(consul_dir() + "/fixtures/" + name);
}

// Runs a shell command, returns its stdout; the exit status in *status.
inline std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// A free TCP port on 127.0.0.1 (bound once by the kernel's choice, then released).
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// The project's Consul double on 127.0.0.1:<free port>, killed by pid when the test ends.
class ConsulDouble {
 public:
  explicit ConsulDouble(const std::string& token = "") : port_(free_port()), token_(token) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string script = consul_dir() + "/consul_double.py";
      const std::string port = std::to_string(port_);
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--port", port.c_str(), "--token",
              token.c_str(), (char*)nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (get("/v1/status/leader").find("8300") != std::string::npos) return;
      ::usleep(25'000);
    }
    ADD_FAILURE() << "the Consul double did not start on port " << port_;
  }
  ~ConsulDouble() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ConsulDouble(const ConsulDouble&) = delete;
  ConsulDouble& operator=(const ConsulDouble&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string get(const std::string& path) const { return curl("", path); }
  std::string put(const std::string& path, const std::string& body) const {
    return curl("-X PUT --data-binary @- ", path, body);
  }
  std::string post(const std::string& path) const { return curl("-X POST ", path); }

  // Registers an instance with the agent, as registrator does.
  void add(const std::string& id, const std::string& name, const std::string& address,
           uint16_t port, const std::string& version) const {
    put("/v1/agent/service/register", R"({"ID": ")" + id + R"(", "Name": ")" + name +
                                          R"(", "Address": ")" + address + R"(", "Port": )" +
                                          std::to_string(port) + R"(, "Meta": {"version": ")" +
                                          version + R"("}})");
  }
  void remove(const std::string& id) const { put("/v1/agent/service/deregister/" + id, ""); }

 private:
  std::string curl(const std::string& flags, const std::string& path,
                   const std::string& body = "") const {
    std::string cmd = "curl -s -m 5 " + flags;
    if (!token_.empty()) cmd += "-H 'X-Consul-Token: " + token_ + "' ";
    cmd += "'" + url() + path + "'";
    if (flags.find("@-") != std::string::npos) cmd += " <<'SM_EOF'\n" + body + "\nSM_EOF";
    return run(cmd);
  }

  uint16_t port_ = 0;
  std::string token_;
  pid_t pid_ = -1;
};

}  // namespace sm::consul::test
