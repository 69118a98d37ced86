// session.h: the exchange state machine driven through a scripted Io, without sockets or
// root. Each test plays one path of a connection's life (issue 8) and checks where every
// byte went, what the session still holds, and its invariants after every step.
#include "proxy/session.h"

#include <gtest/gtest.h>

#include "http/request_parser.h"
#include "route/config_json.h"
#include "scripted_io.h"

namespace sm::proxy {
namespace {

using test::ScriptedIo;
using namespace std::chrono_literals;

Endpoint ep(const char* ip, uint16_t port) {
  return Endpoint{*parse_ip(ip, "test"), port};
}

size_t count_of(const std::string& hay, std::string_view needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

const Endpoint kVip = ep("198.18.0.100", 80);
const Endpoint kSvc = ep("198.18.0.10", 8080);
const std::string kOk = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nmine";

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.workers = 1;
    opts_.recv_buffers = 64;  // at most 4 lent buffers queued per connection
    tune(opts_);
    shared_ = std::make_unique<Shared>(opts_);
    auto cfg = route::load_route_config(std::string(SM_PROXY_FIXTURES) + "/session_routes.json");
    ASSERT_TRUE(cfg) << cfg.error().message();
    auto table = route::RouteTable::build(std::move(*cfg), shared_->cluster_states);
    ASSERT_TRUE(table) << table.error().message();
    shared_->routes.publish(*table);
    session_ = std::make_unique<Session>(*shared_, io_, 0);
    io_.attach(session_.get());
  }
  void TearDown() override {
    check();
    // Every connection closed: nothing may stay lent, held or counted.
    for (Slot s = 0; s < 64; ++s)
      if (session_->state(s) != StreamState::free) io_.peer_fails(s, ECONNRESET);
    check();
    EXPECT_EQ(session_->open_streams(), 0u);
    EXPECT_EQ(io_.buffers_lent(), 0u) << "receive buffers not given back";
    EXPECT_EQ(stat().downstream_rq_active.load(), 0);
    EXPECT_EQ(stat().downstream_cx_active.load(), 0);
    session_.reset();
    EXPECT_EQ(io_.strings_out(), 0u) << "pooled strings not returned";
  }
  virtual void tune(Options&) {}

  void check() {
    EXPECT_EQ(session_->check_invariants(), "");
    EXPECT_EQ(io_.violations(), "");
  }
  ListenerStats& stat() { return shared_->listener_stats[0]; }
  Slot client(Endpoint dst = kVip) {
    Slot s = io_.accept(Listener::outbound, dst, ep("198.18.0.2", 40000));
    check();
    return s;
  }
  // The upstream the session connected last, connected.
  Slot upstream() {
    Slot up = io_.last_connect();
    EXPECT_NE(up, kNoSlot);
    if (up != kNoSlot) io_.connect_succeeds(up);
    check();
    return up;
  }

  Options opts_;
  std::unique_ptr<Shared> shared_;
  ScriptedIo io_;
  std::unique_ptr<Session> session_;
};

// ---- request targets ------------------------------------------------------------------------

std::string path_of(const std::string& request_line) {
  http::RequestParser p;
  std::string buf = request_line + "\r\nHost: h\r\n\r\n";
  EXPECT_TRUE(p.parse(buf).complete()) << request_line;
  std::string scratch;
  return std::string(origin_path(p.head(), scratch));
}

TEST(OriginPath, AbsoluteFormLosesSchemeAndAuthorityButKeepsTheQuery) {
  EXPECT_EQ(path_of("GET /a?b=1 HTTP/1.1"), "/a?b=1");
  EXPECT_EQ(path_of("GET http://h/a?b=1 HTTP/1.1"), "/a?b=1");
  EXPECT_EQ(path_of("GET http://h HTTP/1.1"), "/");
  EXPECT_EQ(path_of("GET http://h:8080?x=/y HTTP/1.1"), "/?x=/y");
  EXPECT_EQ(path_of("GET http://h?x=/y HTTP/1.1"), "/?x=/y");
}

// ---- the confirmed bug: absolute-form Host ----------------------------------------------------

TEST_F(SessionTest, AbsoluteFormRequestGoesUpstreamWithTheUrisAuthorityAsHost) {
  Slot c = client();
  io_.peer_sends(c, "GET http://svc/abs?q=1 HTTP/1.1\r\nHost: admin.internal\r\n\r\n");
  ASSERT_EQ(io_.connects().size(), 1u);
  EXPECT_EQ(io_.target(io_.last_connect()), kSvc);
  Slot up = upstream();
  std::string sent = io_.peer_reads(up);
  EXPECT_EQ(sent.rfind("GET /abs?q=1 HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_NE(sent.find("\r\nhost: svc\r\n"), std::string::npos) << sent;
  EXPECT_EQ(sent.find("admin.internal"), std::string::npos) << sent;
  // Origin-form keeps the Host it came with.
  io_.peer_sends(up, kOk);
  EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  io_.peer_sends(c, "GET /o HTTP/1.1\r\nHost: svc:80\r\n\r\n");
  sent = io_.peer_reads(up);
  EXPECT_NE(sent.find("Host: svc:80\r\n"), std::string::npos) << sent;
}

// ---- item 1: nothing is parsed after the decision to close -----------------------------------

TEST_F(SessionTest, BodyBytesAfterAnEarlyResponseAreDroppedNotParsed) {
  Slot c = client();
  io_.peer_sends(c, "POST /early HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n");
  Slot up = upstream();
  io_.peer_reads(up);
  // The server answers before the body; the client has not read it yet.
  io_.peer_sends(up, kOk);
  EXPECT_EQ(session_->state(c), StreamState::draining);
  EXPECT_TRUE(io_.closed_how(up)) << "a connection with half a request body is not reused";
  // The rest of the "body" is a request: it must go nowhere.
  io_.peer_sends(c, "GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n");
  check();
  EXPECT_EQ(io_.connects().size(), 1u);
  EXPECT_EQ(stat().downstream_rq_total.load(), 1u);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(count_of(got, "HTTP/1.1 "), 1u) << got;
  EXPECT_NE(got.find("connection: close"), std::string::npos) << got;
  EXPECT_TRUE(io_.fin_sent(c));
  EXPECT_EQ(session_->state(c), StreamState::lingering);
  io_.peer_closes(c);
  EXPECT_EQ(io_.closed_how(c), CloseHow::graceful);
}

TEST_F(SessionTest, ALocalReplyWithABodyPendingDropsTheBody) {
  Slot c = client();
  // 404 from the proxy itself; the body (a request, in pieces) arrives afterwards.
  io_.peer_sends(c, "POST /nope HTTP/1.1\r\nHost: strict\r\nContent-Length: 40\r\n\r\n");
  EXPECT_EQ(session_->state(c), StreamState::draining);
  io_.peer_sends(c, "GET /only HTTP/1.1\r\nHost: strict\r\n\r\n", 3);
  check();
  EXPECT_TRUE(io_.connects().empty());
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << got;
  EXPECT_EQ(count_of(got, "HTTP/1.1 "), 1u) << got;
  EXPECT_EQ(stat().downstream_rq_no_route.load(), 1u);
}

TEST_F(SessionTest, AParseErrorMidPipelineAnswers400AndParsesNothingAfter) {
  Slot c = client();
  io_.peer_sends(c,
                 "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\n"
                 "GET /a b HTTP/1.1\r\nHost: svc\r\n\r\n"
                 "GET /3 HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  EXPECT_EQ(count_of(io_.peer_reads(up), "GET /"), 1u);
  io_.peer_sends(up, kOk);
  // The 400 goes out; the client keeps sending: dropped, however much.
  for (int i = 0; i < 100; ++i) io_.peer_sends(c, std::string(4096, 'x'), 512);
  check();
  EXPECT_EQ(session_->state(c), StreamState::draining);
  EXPECT_EQ(io_.buffers_lent(), 0u);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(count_of(got, "HTTP/1.1 200"), 1u) << got;
  EXPECT_EQ(count_of(got, "HTTP/1.1 400"), 1u) << got;
  EXPECT_EQ(count_of(got, "HTTP/1.1 "), 2u) << got;
  EXPECT_EQ(stat().downstream_rq_bad_request.load(), 1u);
  EXPECT_EQ(stat().downstream_rq_total.load(), 2u);
  EXPECT_EQ(io_.connects().size(), 1u);
  EXPECT_EQ(io_.queued_bytes(up), 0u);
}

TEST_F(SessionTest, AClosingClientThatNeverClosesIsClosedAfterTheDelayedCloseTimeout) {
  Slot c = client();
  io_.peer_sends(c, "GET /a b HTTP/1.1\r\n\r\n");  // 400; the client neither reads nor closes
  EXPECT_EQ(session_->state(c), StreamState::draining);
  io_.advance(999ms);
  EXPECT_TRUE(io_.open(c));
  io_.advance(2ms);
  EXPECT_EQ(io_.closed_how(c), CloseHow::reset) << "unsent bytes: the kernel would reset anyway";
  EXPECT_EQ(stat().downstream_cx_delayed_close_timeout.load(), 1u);
}

// A response smuggled into a pipeline could be answered late, on a slot the next client
// has by then. The slot's next owner sees only its own exchange.
TEST_F(SessionTest, ANewClientOnAReusedSlotGetsOnlyItsOwnResponse) {
  Slot a = client();
  io_.peer_sends(a, "POST /early HTTP/1.1\r\nHost: svc\r\nContent-Length: 60\r\n\r\n");
  Slot up = upstream();
  io_.peer_sends(up, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nearly");
  io_.peer_sends(a, "GET /late HTTP/1.1\r\nHost: svc\r\n\r\n");
  io_.peer_reads(a);
  io_.peer_closes(a);
  EXPECT_FALSE(io_.open(a));
  Slot b = client();
  EXPECT_EQ(b, a) << "the scripted loop reuses the freed slot first";
  io_.peer_sends(b, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_EQ(io_.connects().size(), 2u) << "the smuggled request never went upstream";
  Slot up2 = upstream();
  EXPECT_EQ(io_.peer_reads(up2).rfind("GET /b ", 0), 0u);
  io_.peer_sends(up2, kOk);
  std::string got = io_.peer_reads(b);
  EXPECT_EQ(count_of(got, "HTTP/1.1 "), 1u) << got;
  EXPECT_NE(got.find("mine"), std::string::npos) << got;
}

TEST_F(SessionTest, AClientGoneMidExchangeTakesItsUpstreamAlong) {
  Slot c = client();
  io_.peer_sends(c, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_fails(c, ECONNRESET);
  EXPECT_FALSE(io_.open(c));
  EXPECT_EQ(io_.closed_how(up), CloseHow::reset);
  EXPECT_EQ(stat().downstream_rq_client_gone.load(), 1u);
}

// ---- item 2: a tunnel ends for both sides ---------------------------------------------------

TEST_F(SessionTest, ATunnelSendErrorClosesBothSides) {
  Slot c = client(ep("198.18.0.20", 6379));
  io_.peer_sends(c, "\x16\x03\x01 hello");
  EXPECT_EQ(session_->state(c), StreamState::tunnel);
  Slot up = upstream();
  EXPECT_EQ(io_.target(up), ep("198.18.0.20", 6379));
  EXPECT_EQ(io_.peer_reads(up), "\x16\x03\x01 hello");
  // A send to the server fails (its recv side saw nothing: paused, say).
  io_.peer_fails(up, EPIPE);
  EXPECT_FALSE(io_.open(up));
  EXPECT_EQ(io_.closed_how(c), CloseHow::reset);
  // The next connections take the freed slots; the old tunnel's bytes go nowhere.
  Slot c2 = client(ep("198.18.0.21", 6379));
  io_.peer_sends(c2, "\x16\x03\x01 two");
  Slot up2 = upstream();
  EXPECT_EQ(io_.peer_reads(up2), "\x16\x03\x01 two");
}

TEST_F(SessionTest, TunnelHalfClosesTravelAndBothEndsClose) {
  Slot c = client(ep("198.18.0.20", 6379));
  io_.peer_sends(c, "\x16\x03\x01 ping");
  Slot up = upstream();
  io_.peer_reads(up);
  io_.peer_closes(c);
  EXPECT_TRUE(io_.fin_sent(up)) << "the client's FIN is passed on";
  io_.peer_sends(up, "pong");
  EXPECT_EQ(io_.peer_reads(c), "pong");
  io_.peer_closes(up);
  EXPECT_EQ(io_.closed_how(c), CloseHow::graceful);
  EXPECT_EQ(io_.closed_how(up), CloseHow::graceful);
}

// ---- item 3: lent buffers per connection ------------------------------------------------------

TEST_F(SessionTest, ATunnelStopsReadingOnceItsPeerHoldsTooManyBuffers) {
  Slot c = client(ep("198.18.0.20", 6379));
  io_.peer_sends(c, "\x16\x03\x01");
  Slot up = upstream();
  // The server reads nothing; the client sends one byte per segment.
  for (int i = 0; i < 64; ++i) io_.peer_sends(c, "b");
  EXPECT_FALSE(io_.reading(c));
  EXPECT_LE(io_.buffers_lent(), 1u + 64 / 16) << "at most recv_buffers/16 per connection";
  EXPECT_GT(io_.waiting_bytes(c), 0u);
  io_.peer_reads(up);
  EXPECT_TRUE(io_.reading(c)) << "resumed once the server took the bytes";
  io_.peer_reads(up);
  EXPECT_EQ(io_.waiting_bytes(c), 0u);
}

// A pause takes effect late: completions already posted still arrive, each with a buffer.
// Past the connection's share their bytes are copied, so it never pins more buffers.
TEST_F(SessionTest, DataArrivingAfterAPauseDoesNotPinMoreBuffers) {
  Slot c = client(ep("198.18.0.20", 6379));
  io_.peer_sends(c, "\x16\x03\x01");
  Slot up = upstream();
  io_.peer_sends(c, std::string(64 * 4096, 'L'), 4096, /*ignore_pause=*/true);
  EXPECT_FALSE(io_.reading(c));
  EXPECT_LE(io_.buffers_lent(), 64u / 16) << "lent buffers beyond the connection's share";
  EXPECT_EQ(io_.queued_bytes(up), 3u + 64 * 4096) << "every byte still goes through";
}

// ---- item 4: pipelining and interim responses -------------------------------------------------

class PipelineTest : public SessionTest {
  void tune(Options& o) override { o.buffer_limit = 2048; }
};

TEST_F(PipelineTest, UnreadRepliesStopThePipelineUntilTheClientReads) {
  Slot c = client();
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += "GET /nope HTTP/1.1\r\nHost: strict\r\n\r\n";
  io_.peer_sends(c, burst);
  uint64_t answered = stat().downstream_rq_total.load();
  EXPECT_LT(answered, 30u) << "replies queued without end";
  EXPECT_FALSE(io_.reading(c));
  EXPECT_EQ(stat().downstream_rq_pipeline_paused.load(), 1u);
  std::string got;
  for (int i = 0; i < 200 && count_of(got, "HTTP/1.1 404") < 100; ++i) got += io_.peer_reads(c);
  EXPECT_EQ(count_of(got, "HTTP/1.1 404"), 100u);
  EXPECT_TRUE(io_.reading(c));
}

// A client paused because its upstream was not taking the body: when that upstream goes
// (answered without reading everything), the client must read again.
TEST_F(PipelineTest, AClientPausedForItsUpstreamReadsAgainOnceThatUpstreamIsGone) {
  Slot c = client();
  io_.peer_sends(
      c, "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 8000\r\n\r\n" + std::string(8000, 'b'));
  EXPECT_FALSE(io_.reading(c)) << "the body is over the limit towards the upstream";
  Slot up = upstream();
  io_.peer_reads(up, 100);  // the server reads a little, then answers
  io_.peer_sends(up, kOk);
  EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  EXPECT_EQ(session_->state(c), StreamState::reading_head);
  EXPECT_TRUE(io_.reading(c)) << "paused for an upstream that is gone";
  io_.peer_sends(c, "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(io_.connects().size(), 2u);
}

TEST_F(SessionTest, InterimResponsesAreForwardedUpToALimitThen502) {
  Slot c = client();
  io_.peer_sends(c, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_reads(up);
  io_.peer_sends(up, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n");
  io_.peer_sends(up, kOk);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("mine"), std::string::npos);
  // A flood: 16 pass, then the exchange ends in 502.
  io_.peer_sends(c, "GET /y HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(io_.connects().size(), 1u) << "the pooled connection carries the next request";
  io_.peer_reads(up);
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += "HTTP/1.1 100 Continue\r\n\r\n";
  io_.peer_sends(up, flood);
  got = io_.peer_reads(c);
  EXPECT_EQ(count_of(got, "HTTP/1.1 100"), 16u);
  EXPECT_NE(got.find("HTTP/1.1 502 Bad Gateway"), std::string::npos) << got;
  EXPECT_FALSE(io_.open(up));
  EXPECT_EQ(stat().downstream_rq_upstream_too_many_1xx.load(), 1u);
}

// ---- item 5: a timeout for every state, a cap on connections ---------------------------------

// A drain (Shared::drain_close, set by lifecycle.h): the response in flight says
// `connection: close` and the connection closes after it; an idle keep-alive connection is
// closed once idle for half the drain time (not at once: its client may be sending).
TEST_F(SessionTest, ADrainClosesBusyConnectionsAfterTheirResponseAndIdleOnesSoon) {
  Slot idle = client();
  io_.peer_sends(idle, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_reads(up);
  io_.peer_sends(up, kOk);
  EXPECT_EQ(io_.peer_reads(idle).find("connection: close"), std::string::npos);
  Slot busy = client();
  io_.peer_sends(busy, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");  // the pooled upstream
  EXPECT_EQ(io_.connects().size(), 1u);
  shared_->drain_close[0] = true;
  io_.advance(1ms);  // a batch ends: the drain starts
  io_.peer_reads(up);
  io_.peer_sends(up, kOk);
  std::string got = io_.peer_reads(busy);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("connection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(io_.fin_sent(busy));
  io_.peer_closes(busy);
  EXPECT_FALSE(io_.open(busy));
  io_.advance(998ms);  // --drain-time-s 2: idle ones close after 1 s
  EXPECT_TRUE(io_.open(idle));
  io_.advance(2ms);
  EXPECT_FALSE(io_.open(idle));
  EXPECT_EQ(stat().downstream_cx_drain_close.load(), 2u);
  EXPECT_EQ(stat().downstream_cx_idle_timeout.load(), 0u);
}

// A response whose head went out before the drain began said nothing of closing: once it
// is complete, the idle connection still closes after half the drain time, not the idle
// timeout (300 s).
TEST_F(SessionTest, ADrainAlsoClosesAConnectionWhoseResponseHeadWasAlreadySent) {
  Slot c = client();
  io_.peer_sends(c, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_reads(up);
  io_.peer_sends(up, "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n");
  shared_->drain_close[0] = true;
  io_.advance(1ms);  // the drain starts mid-response
  io_.peer_sends(up, "mine");
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.find("connection: close"), std::string::npos) << got;
  EXPECT_NE(got.find("mine"), std::string::npos) << got;
  io_.advance(999ms);
  EXPECT_TRUE(io_.open(c));
  io_.advance(2ms);
  EXPECT_FALSE(io_.open(c));
  EXPECT_EQ(stat().downstream_cx_drain_close.load(), 1u);
}

// A failed health check (POST /healthcheck/fail) only says `connection: close`; it closes
// no idle connection, and /healthcheck/ok ends it.
TEST_F(SessionTest, AFailedHealthCheckClosesConnectionsAfterTheirResponseOnly) {
  shared_->health_failed = true;
  Slot c = client();
  io_.peer_sends(c, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_reads(up);
  io_.peer_sends(up, kOk);
  EXPECT_NE(io_.peer_reads(c).find("connection: close\r\n"), std::string::npos);
  io_.peer_closes(c);
  shared_->health_failed = false;
  Slot d = client();
  io_.peer_sends(d, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
  io_.peer_reads(up);
  io_.peer_sends(up, kOk);
  EXPECT_EQ(io_.peer_reads(d).find("connection: close"), std::string::npos);
  io_.advance(5s);
  EXPECT_TRUE(io_.open(d));
  EXPECT_EQ(stat().downstream_cx_drain_close.load(), 1u);
}

class TimeoutTest : public SessionTest {
  void tune(Options& o) override {
    o.stream_idle_timeout = std::chrono::milliseconds(500);
    o.tunnel_idle_timeout = std::chrono::milliseconds(700);
    o.max_connections = 2;
  }
};

TEST_F(TimeoutTest, ASilentUpstreamEndsInA408AfterTheStreamIdleTimeout) {
  Slot c = client();
  io_.peer_sends(c, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.advance(400ms);
  io_.peer_sends(up, "HTTP/1.1 200 OK\r\n");  // activity: the timer starts over
  io_.advance(400ms);
  EXPECT_TRUE(io_.open(up));
  io_.advance(200ms);
  EXPECT_FALSE(io_.open(up));
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("stream timeout"), std::string::npos);
  EXPECT_EQ(stat().downstream_rq_idle_timeout.load(), 1u);
}

TEST_F(TimeoutTest, AnIdleTunnelIsClosedAfterTheTunnelIdleTimeout) {
  Slot c = client(ep("198.18.0.20", 6379));
  io_.peer_sends(c, "\x16\x03\x01");
  Slot up = upstream();
  io_.advance(600ms);
  io_.peer_sends(up, "x");
  io_.advance(600ms);
  EXPECT_TRUE(io_.open(c));
  io_.advance(200ms);
  EXPECT_FALSE(io_.open(c));
  EXPECT_FALSE(io_.open(up));
  EXPECT_EQ(stat().tcp_idle_timeout.load(), 1u);
}

TEST_F(TimeoutTest, ConnectionsOverMaxConnectionsAreClosedAtOnce) {
  Slot a = client();
  Slot b = client();
  Slot over = client();
  EXPECT_TRUE(io_.open(a));
  EXPECT_TRUE(io_.open(b));
  EXPECT_EQ(io_.closed_how(over), CloseHow::reset);
  EXPECT_EQ(stat().downstream_cx_overflow.load(), 1u);
  io_.peer_closes(a);
  Slot again = client();
  EXPECT_TRUE(io_.open(again));
}

// ---- failures and retries: the named branches -------------------------------------------------

TEST_F(SessionTest, ConnectFailureIs503UpstreamConnectFailure) {
  Slot c = client();
  io_.peer_sends(c, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n");
  io_.connect_fails(io_.last_connect(), ECONNREFUSED);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("reset reason: connection failure"), std::string::npos);
  EXPECT_EQ(stat().downstream_rq_upstream_connect_fail.load(), 1u);
  EXPECT_EQ(session_->state(c), StreamState::reading_head) << "keep-alive goes on";
}

TEST_F(SessionTest, A503IsRetriedAndTheClientSeesTheSecondAnswer) {
  Slot c = client();
  io_.peer_sends(c, "GET /retry HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot first = upstream();
  io_.peer_sends(first, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
  EXPECT_TRUE(io_.peer_reads(c).empty()) << "nothing reaches the client before the retry";
  io_.advance(50ms);  // the backoff
  ASSERT_EQ(io_.connects().size(), 2u);
  Slot second = upstream();
  EXPECT_EQ(io_.peer_reads(second).rfind("GET /retry ", 0), 0u);
  io_.peer_sends(second, kOk);
  EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  EXPECT_EQ(stat().downstream_rq_retry.load(), 1u);
}

// ---- fault injection and per-try timeouts (issue 9) -----------------------------------------

uint64_t route_stat(const Shared& shared, const std::string& name) {
  for (const auto& [n, v] : route::render_stats(*shared.routes.current(), route::Clock::now()))
    if (n == name) return v;
  ADD_FAILURE() << "no stat " << name;
  return 0;
}

TEST_F(SessionTest, AFaultAbortAnswersWithoutTouchingTheUpstreamOrItsCircuitBreaker) {
  Slot c = client();
  io_.peer_sends(c, "GET /fault-abort HTTP/1.1\r\nHost: svc\r\n\r\n");
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 418 ", 0), 0u) << got;
  EXPECT_NE(got.find("\r\n\r\nfault filter abort"), std::string::npos) << got;
  EXPECT_TRUE(io_.connects().empty());
  EXPECT_EQ(stat().fault_aborts_injected.load(), 1u);
  EXPECT_EQ(stat().fault_delays_injected.load(), 0u);
  EXPECT_EQ(route_stat(*shared_, "vhost.svc.route.abort.fault.aborts_injected"), 1u);
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_total"), 0u);
  EXPECT_EQ(session_->state(c), StreamState::reading_head) << "keep-alive goes on";
  // The next request on the connection is not held by the fault.
  io_.peer_sends(c, "GET /y HTTP/1.1\r\nHost: svc\r\n\r\n");
  EXPECT_EQ(io_.connects().size(), 1u);
}

TEST_F(SessionTest, AFaultDelayHoldsTheRequestAndItsBodyThenSendsBoth) {
  Slot c = client();
  io_.peer_sends(c, "POST /fault-delay HTTP/1.1\r\nHost: svc\r\nContent-Length: 8\r\n\r\nfirst");
  EXPECT_FALSE(io_.reading(c)) << "the body waits in the socket during the delay";
  io_.peer_sends(c, "end");  // waits, as in the kernel's socket buffer
  io_.advance(999ms);
  EXPECT_TRUE(io_.connects().empty()) << "nothing goes upstream during the delay";
  EXPECT_EQ(stat().fault_delays_injected.load(), 1u);
  io_.advance(1ms);
  ASSERT_EQ(io_.connects().size(), 1u);
  Slot up = upstream();
  EXPECT_EQ(io_.peer_reads(up).substr(0, 21), "POST /fault-delay HTT");
  std::string sent = io_.peer_reads(up);
  io_.peer_sends(up, kOk);
  EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  EXPECT_EQ(route_stat(*shared_, "vhost.svc.route.delay.fault.delays_injected"), 1u);
}

TEST_F(SessionTest, AFaultDelayDoesNotCountAgainstTheRouteTimeout) {
  Slot c = client();
  io_.peer_sends(c, "GET /fault-delay HTTP/1.1\r\nHost: svc\r\n\r\n");
  io_.advance(1000ms);
  Slot up = upstream();
  io_.advance(250ms);  // the route's 0.3 s started after the delay
  EXPECT_TRUE(io_.open(up));
  io_.advance(60ms);
  EXPECT_FALSE(io_.open(up));
  EXPECT_EQ(io_.peer_reads(c).rfind("HTTP/1.1 504 ", 0), 0u);
}

TEST_F(SessionTest, ADelayedAbortAnswersAfterTheDelay) {
  Slot c = client();
  io_.peer_sends(c, "GET /fault-both HTTP/1.1\r\nHost: svc\r\n\r\n");
  io_.advance(150ms);
  EXPECT_TRUE(io_.peer_reads(c).empty());
  io_.advance(50ms);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 500 ", 0), 0u) << got;
  EXPECT_TRUE(io_.connects().empty());
  EXPECT_EQ(stat().fault_delays_injected.load(), 1u);
  EXPECT_EQ(stat().fault_aborts_injected.load(), 1u);
}

TEST_F(SessionTest, AClientLeavingDuringAFaultDelayReleasesEverything) {
  Slot c = client();
  io_.peer_sends(c, "POST /fault-delay HTTP/1.1\r\nHost: svc\r\nContent-Length: 8\r\n\r\nfi");
  io_.peer_fails(c, ECONNRESET);
  check();
  io_.advance(2s);
  EXPECT_TRUE(io_.connects().empty());
  EXPECT_EQ(stat().downstream_rq_client_gone.load(), 1u);
  // TearDown: the held head went back to the pool, nothing is active.
}

TEST_F(SessionTest, APerTryTimeoutResetsTheAttemptAndRetriesThen504) {
  Slot c = client();
  io_.peer_sends(c, "GET /per-try HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot first = upstream();
  io_.advance(199ms);
  EXPECT_TRUE(io_.open(first));
  io_.advance(1ms);
  EXPECT_EQ(io_.closed_how(first), CloseHow::reset);
  EXPECT_TRUE(io_.peer_reads(c).empty()) << "the retry is invisible to the client";
  io_.advance(20ms);  // the backoff
  ASSERT_EQ(io_.connects().size(), 2u);
  Slot second = upstream();
  io_.advance(200ms);
  EXPECT_FALSE(io_.open(second));
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 504 ", 0), 0u) << got;
  EXPECT_NE(got.find("upstream request timeout"), std::string::npos);
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_per_try_timeout"), 2u);
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_timeout"), 0u);
  EXPECT_EQ(stat().downstream_rq_retry.load(), 1u);
}

TEST_F(SessionTest, APerTryTimeoutAnswersInTimeThenTheNextTryServes) {
  Slot c = client();
  io_.peer_sends(c, "GET /per-try HTTP/1.1\r\nHost: svc\r\n\r\n");
  upstream();
  io_.advance(230ms);
  Slot second = upstream();
  io_.advance(150ms);
  io_.peer_sends(second, kOk);  // within its own 200 ms
  EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_per_try_timeout"), 1u);
}

TEST_F(SessionTest, APerTryTimeoutWithoutARetryPolicyForResetsIs504AtOnce) {
  Slot c = client();
  io_.peer_sends(c, "GET /per-try-noretry HTTP/1.1\r\nHost: svc\r\n\r\n");
  upstream();
  io_.advance(200ms);
  EXPECT_EQ(io_.peer_reads(c).rfind("HTTP/1.1 504 ", 0), 0u);
  EXPECT_EQ(io_.connects().size(), 1u);
}

TEST_F(SessionTest, TheRouteTimeoutWinsWhenItIsShorterThanThePerTryTimeout) {
  Slot c = client();
  io_.peer_sends(c, "GET /per-try-long HTTP/1.1\r\nHost: svc\r\n\r\n");
  upstream();
  io_.advance(100ms);
  EXPECT_EQ(io_.peer_reads(c).rfind("HTTP/1.1 504 ", 0), 0u);
  EXPECT_EQ(io_.connects().size(), 1u) << "the route's timeout is final: no retry";
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_timeout"), 1u);
  EXPECT_EQ(route_stat(*shared_, "cluster.svc.upstream_rq_per_try_timeout"), 0u);
}

TEST_F(SessionTest, AnUpstreamResetBeforeTheResponseIs502AndAfterItAnAbort) {
  Slot c = client();
  io_.peer_sends(c, "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up = upstream();
  io_.peer_fails(up, ECONNRESET);
  std::string got = io_.peer_reads(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << got;
  // Mid-response: no status can be sent any more, the client's connection is reset.
  io_.peer_sends(c, "GET /y HTTP/1.1\r\nHost: svc\r\n\r\n");
  Slot up2 = upstream();
  io_.peer_sends(up2, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
  io_.peer_fails(up2, ECONNRESET);
  EXPECT_EQ(io_.closed_how(c), CloseHow::reset);
  EXPECT_EQ(stat().downstream_rq_upstream_reset.load(), 2u);
}

TEST_F(SessionTest, KeepAliveReusesThePooledUpstreamConnection) {
  Slot c = client();
  for (int i = 0; i < 3; ++i) {
    io_.peer_sends(c, "GET /k HTTP/1.1\r\nHost: svc\r\n\r\n");
    if (i == 0) upstream();
    Slot up = io_.last_connect();
    EXPECT_EQ(io_.peer_reads(up).rfind("GET /k ", 0), 0u);
    io_.peer_sends(up, kOk);
    EXPECT_NE(io_.peer_reads(c).find("mine"), std::string::npos);
  }
  EXPECT_EQ(io_.connects().size(), 1u);
  EXPECT_EQ(session_->state(io_.last_connect()), StreamState::idle);
}

TEST_F(SessionTest, InboundIpv6GoesToLoopbackAndRoutedIpv6EndpointsAreDialled) {
  Slot in = io_.accept(Listener::inbound, ep("2001:2::5", 9080), ep("2001:2::5", 9080));
  io_.peer_sends(in, "GET / HTTP/1.1\r\nHost: app\r\n\r\n");
  ASSERT_EQ(io_.connects().size(), 1u);
  EXPECT_EQ(io_.target(io_.last_connect()), ep("::1", 9080));
  EXPECT_FALSE(io_.source(io_.last_connect()));
  Slot in4 = io_.accept(Listener::inbound, ep("198.18.0.5", 9080), ep("198.18.0.5", 9080));
  io_.peer_sends(in4, "GET / HTTP/1.1\r\nHost: app\r\n\r\n");
  EXPECT_EQ(io_.target(io_.last_connect()), ep("198.18.0.5", 9080));
  EXPECT_EQ(io_.source(io_.last_connect()), IpAddr::v4(htonl(0x7f000006)));
  Slot c = client();
  io_.peer_sends(c, "GET / HTTP/1.1\r\nHost: v6\r\n\r\n");
  EXPECT_EQ(io_.target(io_.last_connect()), ep("2001:2::10", 8080));
}

TEST_F(SessionTest, ALoopToTheProxysOwnPortIsRefused) {
  Slot c = io_.accept(Listener::outbound, ep("::1", 15001), ep("::1", 15001));
  EXPECT_EQ(io_.closed_how(c), CloseHow::reset);
  Slot d = io_.accept(Listener::outbound, ep("198.18.0.2", 15006), ep("198.18.0.2", 15001));
  EXPECT_EQ(io_.closed_how(d), CloseHow::reset);
  EXPECT_EQ(stat().downstream_cx_loop.load(), 2u);
}

}  // namespace
}  // namespace sm::proxy
