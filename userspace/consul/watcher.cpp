// The blocking-query loop; see watcher.h.
#include "consul/watcher.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "sockmesh/net.h"

namespace sm::consul {

struct ConsulWatcher::Watch {
  uint64_t id = 0;
  std::string path;
  bool not_found_ok = false;
  Callback cb;
  BlockingIndex index;
  Backoff backoff;
  RateLimiter limiter;
  Phase phase = Phase::waiting;
  TimePoint due{};  // waiting: when to start; otherwise: the deadline of this phase
  UniqueFd fd;      // kept across queries (keep-alive)
  std::string out;  // request bytes not sent yet
  size_t sent = 0;
  ResponseReader reader;
  bool failed = false;  // the last attempt failed
  bool answered = false;
  bool reused = false;  // this query runs on a kept connection

  Watch(const WatchOptions& o)
      : backoff(o.backoff_base, o.backoff_max), limiter(o.queries_per_second, o.burst) {}
};

namespace {

uint64_t parse_index(std::string_view v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && p == v.data() + v.size() ? n : 0;
}

std::string wait_param(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

}  // namespace

ConsulWatcher::ConsulWatcher(ConsulAddress address, WatchOptions options)
    : address_(std::move(address)),
      options_(options),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      rng_(std::random_device{}()) {}

ConsulWatcher::~ConsulWatcher() = default;

uint64_t ConsulWatcher::add(std::string path, bool not_found_ok, Callback cb) {
  auto w = std::make_unique<Watch>(options_);
  w->id = next_id_++;
  w->path = std::move(path);
  w->not_found_ok = not_found_ok;
  w->cb = std::move(cb);
  w->due = Clock::now();
  uint64_t id = w->id;
  watches_.emplace(id, std::move(w));
  return id;
}

void ConsulWatcher::remove(uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  close_connection(*it->second);
  watches_.erase(it);
}

size_t ConsulWatcher::failing() const {
  return static_cast<size_t>(std::count_if(watches_.begin(), watches_.end(),
                                           [](const auto& kv) { return kv.second->failed; }));
}

size_t ConsulWatcher::answered() const {
  return static_cast<size_t>(std::count_if(watches_.begin(), watches_.end(),
                                           [](const auto& kv) { return kv.second->answered; }));
}

size_t ConsulWatcher::connections() const {
  return static_cast<size_t>(std::count_if(
      watches_.begin(), watches_.end(), [](const auto& kv) { return kv.second->fd.get() >= 0; }));
}

std::string ConsulWatcher::target(const Watch& w) const {
  std::string t = w.path;
  t += w.path.find('?') == std::string::npos ? '?' : '&';
  t += "index=" + std::to_string(w.index.next());
  if (w.index.next() != 0) t += "&wait=" + wait_param(options_.wait);
  return t;
}

void ConsulWatcher::set_events(Watch& w, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = w.id;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, w.fd.get(), &ev);
}

void ConsulWatcher::close_connection(Watch& w) {
  if (w.fd.get() >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.fd.get(), nullptr);
  w.fd.reset();
}

Status ConsulWatcher::open_connection(Watch& w) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(address_.port);
  if (int rc = ::getaddrinfo(address_.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return plain_error("resolve " + address_.host + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  w.fd.reset(fd);
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)
    return errno_error("connect " + address_.authority());
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = w.id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl");
  return {};
}

void ConsulWatcher::start(Watch& w, TimePoint now) {
  // The rate limit applies to every query; back-off already delayed `due` after errors.
  TimePoint allowed = w.limiter.acquire(now);
  if (allowed > now) {
    w.due = allowed;
    return;
  }
  w.out = build_get(address_, target(w));
  w.sent = 0;
  w.reader.reset();
  w.reused = w.fd.get() >= 0;
  if (w.reused) {
    w.phase = Phase::sending;
    set_events(w, EPOLLOUT);
    send_more(w, now);
    return;
  }
  if (Status s = open_connection(w); !s) return fail(w, s.error().message(), now);
  w.phase = Phase::connecting;
  w.due = now + options_.connect_timeout;
}

void ConsulWatcher::send_more(Watch& w, TimePoint now) {
  while (w.sent < w.out.size()) {
    ssize_t n = ::send(w.fd.get(), w.out.data() + w.sent, w.out.size() - w.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      return fail(w, std::string("send: ") + std::strerror(errno), now);
    }
    w.sent += static_cast<size_t>(n);
  }
  w.phase = Phase::receiving;
  // Consul answers within wait + wait/16 (its jitter); allow a margin for a busy server.
  const Duration blocking = w.index.next() != 0 ? options_.wait + options_.wait / 16 : Duration(0);
  w.due = now + blocking + options_.answer_margin;
  set_events(w, EPOLLIN | EPOLLRDHUP);
}

void ConsulWatcher::receive(Watch& w, TimePoint now) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(w.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      auto st = w.reader.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (st == ResponseReader::State::error) return fail(w, "response: " + w.reader.error(), now);
      if (st == ResponseReader::State::complete) return complete(w, now);
      continue;
    }
    if (n == 0) {
      // A kept connection the server closed before answering: retry at once on a new one.
      if (w.reused && w.reader.response().status == 0) {
        close_connection(w);
        w.phase = Phase::waiting;
        w.due = now;
        return;
      }
      auto st = w.reader.on_close();
      if (st == ResponseReader::State::complete) return complete(w, now);
      return fail(w, "response: " + w.reader.error(), now);
    }
    if (errno == EAGAIN || errno == EINTR) return;
    return fail(w, std::string("recv: ") + std::strerror(errno), now);
  }
}

void ConsulWatcher::complete(Watch& w, TimePoint now) {
  HttpResponse& r = w.reader.response();
  if (!r.keep_alive) close_connection(w);
  const bool ok = r.status == 200 || (r.status == 404 && w.not_found_ok);
  if (!ok) {
    std::string body = r.body.substr(0, 200);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    return fail(w, "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body), now);
  }
  if (r.status == 404) r.body.clear();
  w.failed = false;
  w.answered = true;
  w.backoff.reset();
  w.phase = Phase::waiting;
  w.due = now;
  const BlockingIndex::Update u = w.index.on_response(parse_index(r.header("x-consul-index")));
  if (u == BlockingIndex::Update::same) return;
  // The callback may remove this watch (and so `w`): copy what it needs first.
  Callback cb = w.cb;
  HttpResponse response = std::move(r);
  cb(response, now);
}

void ConsulWatcher::fail(Watch& w, const std::string& why, TimePoint now) {
  close_connection(w);
  w.failed = true;
  w.phase = Phase::waiting;
  w.due = now + w.backoff.next(rng_());
  if (on_error_) on_error_(w.path, why);
}

void ConsulWatcher::poll(Duration max_wait) {
  TimePoint now = Clock::now();
  TimePoint next = now + max_wait;
  for (auto& [id, w] : watches_) next = std::min(next, w->due);
  int timeout_ms = 0;
  if (next > now)
    timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
  epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
  now = Clock::now();
  std::vector<std::pair<uint64_t, uint32_t>> ready;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[i].data.u64;
    const uint32_t ev = events[i].events;
    ready.emplace_back(id, ev);
  }
  for (auto [id, ev] : ready) {
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;
    Watch& w = *it->second;
    switch (w.phase) {
      case Phase::connecting: {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(w.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(w, "connect " + address_.authority() + ": " + std::strerror(err), now);
          break;
        }
        w.phase = Phase::sending;
        send_more(w, now);
        break;
      }
      case Phase::sending:
        send_more(w, now);
        break;
      case Phase::receiving:
        receive(w, now);
        break;
      case Phase::waiting:
        // An idle kept connection became readable: the server closed it (or misbehaved).
        close_connection(w);
        break;
    }
  }
  // Timers: start due queries, expire overdue phases. Callbacks may change watches_, so
  // walk a copy of the ids.
  std::vector<uint64_t> ids;
  ids.reserve(watches_.size());
  for (auto& [id, w] : watches_)
    if (w->due <= now) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;
    Watch& w = *it->second;
    if (w.due > now) continue;
    switch (w.phase) {
      case Phase::waiting:
        start(w, now);
        break;
      case Phase::connecting:
        fail(w, "connect " + address_.authority() + ": timed out", now);
        break;
      case Phase::sending:
      case Phase::receiving:
        fail(w, "no answer within the blocking query's wait", now);
        break;
    }
  }
}

}  // namespace sm::consul
