// sm-splice-bench: ping-pong and bulk throughput over one local TCP connection, three
// ways in one run: plain loopback (no sockmesh), sockmesh with splicing off, and sockmesh
// with splicing on (app -> its sidecar, the connect redirected by connect4). Reports
// round trips/s with p50/p99 and GB/s, and the ratio spliced / loopback.
// Needs root; creates and removes its own sm-k<pid>-* cgroup, netns and pins.
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

#include "harness.h"
#include "stream.h"

using namespace sm::test;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  double seconds = 2.0;
  std::vector<size_t> sizes = {1, 64, 1024, 16384, 65536};
  std::vector<int> conns = {1, 4};
  uint64_t bulk_mib = 2048;
  std::vector<size_t> bulk_writes = {4096, 65536, 1 << 20};
};

enum class Variant { loopback, nosplice, splice };
const char* name(Variant v) {
  switch (v) {
    case Variant::loopback:
      return "loopback";
    case Variant::nosplice:
      return "sockmesh,splice-off";
    case Variant::splice:
      return "sockmesh,splice-on";
  }
  return "?";
}

enum class Pin { none, same, split };
const char* name(Pin p) {
  switch (p) {
    case Pin::none:
      return "unpinned";
    case Pin::same:
      return "both on cpu0";
    case Pin::split:
      return "client cpu0, server cpu1";
  }
  return "?";
}
void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}
void apply_pin(Pin p, bool server) {
  if (p == Pin::same) pin_to(0);
  if (p == Pin::split) pin_to(server ? 1 : 0);
}

bool full_read(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, buf + got, n - got, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;  // EAGAIN: sockmap quirk
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

struct PingResult {
  double rtps = 0, p50_us = 0, p99_us = 0;
};
struct BulkResult {
  double gbps = 0;
};

class Bench {
 public:
  explicit Bench(const Options& o) : opt_(o) {
    install_ = std::make_unique<Install>("--no-splice");
    net_ = std::make_unique<TestNet>();
    mesh_ = &net_->add_host("mesh", "198.18.3.2/24");
    plain_ = &net_->add_host("plain", "198.18.3.3/24");
    // The app <-> sidecar hop: the app here is this benchmark (non-blocking-safe pumps),
    // which is what enroll --splice-app is for (by default that hop is not spliced).
    install_->enroll(*mesh_, "--splice-app");
  }

  void set_variant(Variant v) {
    install_->loader_ok(std::string("splice ") + (v == Variant::splice ? "on" : "off"));
    variant_ = v;
  }

  // Places and destination of the two ends for the current variant.
  Place server_place() const {
    return variant_ == Variant::loopback ? Place::in(*plain_, 1337) : install_->place(*mesh_, 1337);
  }
  Place client_place() const {
    return variant_ == Variant::loopback ? Place::in(*plain_, 1000) : install_->place(*mesh_, 1000);
  }
  // Under sockmesh the app dials a remote service and lands on its sidecar.
  std::pair<std::string, uint16_t> dst() const {
    return variant_ == Variant::loopback ? std::pair<std::string, uint16_t>{"127.0.0.1", 15001}
                                         : std::pair<std::string, uint16_t>{"198.18.9.9", 9080};
  }

  PingResult ping_pong(size_t size, int conns, Pin pin) {
    auto [addr, port] = dst();
    double secs = opt_.seconds;
    auto out = run_concurrently({server_place(), client_place()}, [&](size_t who, std::string& o) {
      apply_pin(pin, who == 0);
      std::vector<std::thread> threads;
      std::vector<std::vector<double>> lat(static_cast<size_t>(conns));
      std::vector<uint64_t> rounds(static_cast<size_t>(conns), 0);
      int l = who == 0 ? tcp_listen("0.0.0.0", 15001) : -1;
      for (int c = 0; c < conns; ++c) {
        int fd = who == 0 ? ::accept(l, nullptr, nullptr) : connect_retry(addr, port);
        threads.emplace_back([&, c, fd] {
          std::vector<char> buf(size, 'p');
          if (who == 0) {  // echo until the client closes
            while (full_read(fd, buf.data(), size) && write_all(fd, buf.data(), size)) {
            }
          } else {
            auto end = Clock::now() + std::chrono::duration<double>(secs);
            auto& l2 = lat[static_cast<size_t>(c)];
            l2.reserve(1 << 20);
            while (Clock::now() < end) {
              auto t0 = Clock::now();
              if (!write_all(fd, buf.data(), size) || !full_read(fd, buf.data(), size)) break;
              l2.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
              ++rounds[static_cast<size_t>(c)];
            }
          }
          ::close(fd);
        });
      }
      for (auto& t : threads) t.join();
      if (who == 1) {
        std::vector<double> all;
        uint64_t total = 0;
        for (size_t c = 0; c < lat.size(); ++c) {
          all.insert(all.end(), lat[c].begin(), lat[c].end());
          total += rounds[c];
        }
        std::sort(all.begin(), all.end());
        auto pct = [&](double p) {
          return all.empty() ? 0.0
                             : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
        };
        std::ostringstream s;
        s << total / secs << ' ' << pct(0.50) << ' ' << pct(0.99);
        o = s.str();
      }
    });
    PingResult r;
    std::istringstream in(out.at(1));
    in >> r.rtps >> r.p50_us >> r.p99_us;
    return r;
  }

  BulkResult bulk(size_t write_size, Pin pin) {
    auto [addr, port] = dst();
    uint64_t bytes = opt_.bulk_mib << 20;
    auto out = run_concurrently({server_place(), client_place()}, [&](size_t who, std::string& o) {
      apply_pin(pin, who == 0);
      if (who == 0) {
        int l = tcp_listen("0.0.0.0", 15001);
        int fd = ::accept(l, nullptr, nullptr);
        std::vector<char> buf(1 << 20);
        auto t0 = Clock::now();
        uint64_t got = 0;
        for (;;) {
          ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
          if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
          if (n <= 0) break;
          got += static_cast<uint64_t>(n);
        }
        double s = std::chrono::duration<double>(Clock::now() - t0).count();
        o = std::to_string(got == bytes ? static_cast<double>(got) / s / 1e9 : 0.0);
      } else {
        int fd = connect_retry(addr, port);
        std::vector<char> buf(write_size, 'b');
        for (uint64_t sent = 0; sent < bytes;) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(write_size, bytes - sent));
          if (!write_all(fd, buf.data(), n)) break;
          sent += n;
        }
        ::close(fd);
      }
    });
    return BulkResult{std::atof(out.at(0).c_str())};
  }

  uint64_t splice_msgs() const { return install_->counter("splice_msgs"); }

 private:
  static int connect_retry(const std::string& addr, uint16_t port) {
    for (int i = 0; i < 300; ++i) {
      int fd = tcp_connect(addr, port);
      if (fd != -ECONNREFUSED) return fd;
      usleep(10000);
    }
    return -1;
  }

  Options opt_;
  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* mesh_ = nullptr;
  Netns* plain_ = nullptr;
  Variant variant_ = Variant::loopback;
};

constexpr Variant kVariants[] = {Variant::loopback, Variant::nosplice, Variant::splice};

void ping_table(Bench& b, const Options& o, Pin pin, const std::vector<size_t>& sizes,
                const std::vector<int>& conns) {
  std::printf("\nping-pong, %s: round trips/s (p50 / p99 us)\n", name(pin));
  std::printf("%-7s %-5s", "size", "conns");
  for (Variant v : kVariants) std::printf(" | %-28s", name(v));
  std::printf(" | splice/loopback\n");
  for (int c : conns) {
    for (size_t size : sizes) {
      PingResult r[3];
      for (int i = 0; i < 3; ++i) {
        b.set_variant(kVariants[i]);
        r[i] = b.ping_pong(size, c, pin);
      }
      std::printf("%-7zu %-5d", size, c);
      for (const auto& x : r) std::printf(" | %9.0f (%6.1f / %6.1f)", x.rtps, x.p50_us, x.p99_us);
      std::printf(" | %.2fx\n", r[0].rtps > 0 ? r[2].rtps / r[0].rtps : 0.0);
      std::fflush(stdout);
    }
  }
  (void)o;
}

void bulk_table(Bench& b, const Options& o, Pin pin) {
  std::printf("\nbulk, %llu MiB one way, %s: GB/s\n", static_cast<unsigned long long>(o.bulk_mib),
              name(pin));
  std::printf("%-8s", "write");
  for (Variant v : kVariants) std::printf(" | %-20s", name(v));
  std::printf(" | splice/loopback\n");
  for (size_t w : o.bulk_writes) {
    BulkResult r[3];
    for (int i = 0; i < 3; ++i) {
      b.set_variant(kVariants[i]);
      r[i] = b.bulk(w, pin);
    }
    std::printf("%-8zu", w);
    for (const auto& x : r) std::printf(" | %-20.2f", x.gbps);
    std::printf(" | %.2fx\n", r[0].gbps > 0 ? r[2].gbps / r[0].gbps : 0.0);
    std::fflush(stdout);
  }
}

std::vector<size_t> parse_sizes(const char* s) {
  std::vector<size_t> v;
  for (std::istringstream in(s); in.good();) {
    size_t x;
    char comma;
    if (in >> x) v.push_back(x);
    in >> comma;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seconds")
      o.seconds = std::atof(next());
    else if (a == "--sizes")
      o.sizes = parse_sizes(next());
    else if (a == "--bulk-mib")
      o.bulk_mib = std::strtoull(next(), nullptr, 10);
    else if (a == "--quick")
      quick = true;
    else {
      std::fprintf(
          stderr,
          "usage: sm-splice-bench [--seconds S] [--sizes 1,64,...] [--bulk-mib N] [--quick]\n");
      return 2;
    }
  }
  if (!is_root()) {
    std::fprintf(stderr, "sm-splice-bench: needs root (loads BPF, creates netns and cgroups)\n");
    return 1;
  }
  if (quick) {
    o.seconds = 0.5;
    o.sizes = {64, 16384};
    o.bulk_mib = 256;
    o.bulk_writes = {65536};
  }
  set_failure_hook([](const std::string& what) {
    std::fprintf(stderr, "sm-splice-bench: %s\n", what.c_str());
    std::exit(1);
  });
  Bench b(o);
  std::printf("sm-splice-bench: %.1f s per cell, %d CPUs\n", o.seconds,
              std::thread::hardware_concurrency());
  ping_table(b, o, Pin::none, o.sizes, o.conns);
  // Where the two ends run matters as much as the data path on a 2-vCPU VM.
  ping_table(b, o, Pin::same, {64}, {1});
  ping_table(b, o, Pin::split, {64}, {1});
  bulk_table(b, o, Pin::none);
  bulk_table(b, o, Pin::split);
  std::printf("\nsplice_msgs counter at the end: %llu (proves the spliced runs were spliced)\n",
              static_cast<unsigned long long>(b.splice_msgs()));
  return 0;
}
