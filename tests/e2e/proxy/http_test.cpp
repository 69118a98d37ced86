// HTTP/1.1 through the outbound listener: the headers a mesh adds and keeps, keep-alive
// and pipelining, bodies byte-exact in every framing, 100-continue and Upgrade.
#include <sys/socket.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

using Http = ProxyMesh;

const std::regex kUuid4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");

TEST_P(Http, PassthroughReplacesServerAndAddsMeshHeaders) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_proxy();
  auto rs = http_seq(kSrv1, 9080, {get(kSrv1 + ":9080", "/hello"), get(kSrv1 + ":9080", "/again")});
  ASSERT_EQ(rs.size(), 2u);
  for (const HttpResponse& r : rs) {
    ASSERT_EQ(r.status, 200) << r;
    EXPECT_EQ(r.body, "v1\n");
    EXPECT_EQ(r.header("x-served-by"), "v1");
    // Overwritten like Envoy does, not added next to nginx's.
    EXPECT_EQ(r.count("server"), 1u) << r;
    EXPECT_EQ(r.header("server"), "sockmesh") << r;
    std::string st = r.header("x-sockmesh-upstream-service-time");
    EXPECT_TRUE(!st.empty() && st.find_first_not_of("0123456789") == std::string::npos) << r;
    // Generated when absent, and what reached nginx.
    EXPECT_TRUE(std::regex_match(r.header("x-echo-request-id"), kUuid4)) << r;
    EXPECT_EQ(r.header("x-echo-forwarded-proto"), "http") << r;
  }
  EXPECT_NE(rs[0].header("x-echo-request-id"), rs[1].header("x-echo-request-id"));
  EXPECT_EQ(rs[1].header("x-echo-uri"), "/again");
  EXPECT_EQ(stat("listener.outbound.downstream_rq_passthrough"), 2u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_2xx"), 2u);
  EXPECT_EQ(stat("listener.outbound.downstream_cx_http1"), 1u);
}

TEST_P(Http, ClientRequestIdAndB3HeadersReachTheUpstreamUnchanged) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_proxy();
  const std::string trace =
      "x-request-id: 5f1c1d5e-client-chosen-id\r\n"
      "x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\n"
      "x-b3-spanid: e457b5a2e4d86bd1\r\n"
      "x-b3-parentspanid: 05e3ac9a4f6e3b90\r\n"
      "x-b3-sampled: 1\r\n"
      "x-b3-flags: 0\r\n";
  HttpResponse r = http(kSrv1, 9080, get("v1.example", "/trace", trace));
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.header("x-echo-request-id"), "5f1c1d5e-client-chosen-id");
  EXPECT_EQ(r.header("x-echo-b3-traceid"), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(r.header("x-echo-b3-spanid"), "e457b5a2e4d86bd1");
  EXPECT_EQ(r.header("x-echo-b3-parentspanid"), "05e3ac9a4f6e3b90");
  EXPECT_EQ(r.header("x-echo-b3-sampled"), "1");
  EXPECT_EQ(r.header("x-echo-b3-flags"), "0");
  EXPECT_EQ(r.header("x-echo-host"), "v1.example");
  // A client's x-request-id is kept, not duplicated: the python app sees every header.
  start_py_http(*srv1_, kSrv1, 8080, "py");
  HttpResponse echo = http(kSrv1, 8080, get("py", "/echo", "X-Request-Id: only-one\r\n"));
  ASSERT_EQ(echo.status, 200) << echo;
  size_t first = echo.body.find("\"x-request-id\"");
  ASSERT_NE(first, std::string::npos) << echo.body;
  EXPECT_EQ(echo.body.find("\"x-request-id\"", first + 1), std::string::npos) << echo.body;
  EXPECT_NE(echo.body.find("[\"x-request-id\", \"only-one\"]"), std::string::npos) << echo.body;
}

TEST_P(Http, ManyRequestsOnOneKeepAliveConnection) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_proxy();
  constexpr int kRequests = 300;
  std::vector<std::string> reqs;
  for (int i = 0; i < kRequests; ++i) {
    std::string path = "/ka/" + std::to_string(i);
    if (i % 10 == 9)
      reqs.push_back("HEAD " + path + " HTTP/1.1\r\nHost: v1\r\n\r\n");
    else if (i % 10 == 5)
      reqs.push_back(post("v1", path, "body-" + std::to_string(i)));
    else
      reqs.push_back(get("v1", path));
  }
  auto rs = http_seq(kSrv1, 9080, reqs);
  ASSERT_EQ(rs.size(), static_cast<size_t>(kRequests)) << rs.back();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(rs[i].status, 200) << "request " << i << ": " << rs[i];
    EXPECT_EQ(rs[i].header("x-echo-uri"), "/ka/" + std::to_string(i));
    EXPECT_EQ(rs[i].body, i % 10 == 9 ? "" : "v1\n") << "request " << i;
  }
  EXPECT_EQ(stat("listener.outbound.downstream_cx_total"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_total"), static_cast<uint64_t>(kRequests));
}

TEST_P(Http, PipelinedRequestsAreAnsweredInOrder) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_proxy();
  constexpr int kRequests = 40;
  std::string burst;
  for (int i = 0; i < kRequests; ++i) {
    std::string path = "/pipe/" + std::to_string(i);
    burst += i % 3 == 1 ? post("v1", path, std::string(100 + i * 37, 'x')) : get("v1", path);
  }
  auto rs = HttpResponse::parse_list(run_in(client(), [&](std::string& out) {
    HttpConn c(kSrv1, 9080);
    c.send(burst);  // one write: the proxy sees many requests in one read
    std::vector<HttpResponse> list;
    for (int i = 0; i < kRequests; ++i) {
      list.push_back(c.read());
      if (list.back().status == 0) break;
    }
    out = HttpResponse::serialize_list(list);
  }));
  ASSERT_EQ(rs.size(), static_cast<size_t>(kRequests)) << rs.back();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(rs[i].status, 200) << "response " << i << ": " << rs[i];
    EXPECT_EQ(rs[i].header("x-echo-uri"), "/pipe/" + std::to_string(i));
    if (i % 3 == 1) {
      EXPECT_EQ(rs[i].header("x-echo-content-length"), std::to_string(100 + i * 37));
    }
  }
}

// The response to an upload: {"len": N, "sha256": "..."} from servers.py.
void expect_upload(const HttpResponse& r, size_t len, const std::string& sha) {
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_NE(r.body.find("\"len\": " + std::to_string(len)), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(sha), std::string::npos) << r.body << "\nexpected sha256 " << sha;
}

TEST_P(Http, ChunkedRequestBodyIsStreamedByteExact) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy();
  constexpr size_t kSize = 3 * 1024 * 1024 + 12345;
  const std::string data = random_bytes(kSize, 7);
  HttpResponse r = HttpResponse::parse(run_in(client(), [&](std::string& out) {
    HttpConn c(kSrv1, 8080);
    c.send("POST /upload HTTP/1.1\r\nHost: py\r\nTransfer-Encoding: chunked\r\n\r\n");
    const size_t sizes[] = {1, 10, 1000, 65536, 7777, 300000, 3};
    size_t off = 0;
    for (int i = 0; off < data.size(); ++i) {
      size_t n = std::min(sizes[i % 7], data.size() - off);
      char line[32];
      std::snprintf(line, sizeof line, "%zx\r\n", n);
      c.send(std::string(line) + data.substr(off, n) + "\r\n");
      off += n;
      if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    c.send("0\r\n\r\n");
    out = c.read(15000).serialize();
  }));
  expect_upload(r, kSize, sha256_hex(data));
}

TEST_P(Http, ChunkedResponseBodyIsByteExact) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy();
  std::string file = tmp_->write("blob", random_bytes(3 * 1024 * 1024 + 999, 11));
  HttpResponse r = HttpResponse::parse(run_in(client(), [&](std::string& out) {
    HttpConn c(kSrv1, 8080);
    c.send(get("py", "/chunked?file=" + file));
    HttpResponse resp = c.read(15000);
    resp.headers.emplace_back("body-size", std::to_string(resp.body.size()));
    resp.body = sha256_hex(resp.body);
    out = resp.serialize();
  }));
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_TRUE(r.chunked) << r;
  EXPECT_EQ(r.header("body-size"), std::to_string(3 * 1024 * 1024 + 999));
  EXPECT_EQ(r.body, sha256_file(file));
}

TEST_P(Http, ContentLengthBodiesOfSeveralMiBBothWays) {
  std::string nginx_dir = start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_py_http(*srv1_, kSrv1, 8080, "py");
  std::string www = tmp_->file("www");
  ::mkdir(www.c_str(), 0755);
  start_http_server_module(*srv2_, kSrv2, 8000, www);
  start_routed_proxy();
  const std::string blob = random_bytes(8 * 1024 * 1024 + 17, 23);
  std::ofstream(nginx_dir + "/files/blob", std::ios::binary) << blob;
  std::ofstream(www + "/blob", std::ios::binary) << blob;
  const std::string sha = sha256_hex(blob);
  const std::string upload = random_bytes(6 * 1024 * 1024 + 5, 29);

  auto rs = HttpResponse::parse_list(run_in(client(), [&](std::string& out) {
    std::vector<HttpResponse> list;
    auto fetch = [&](const std::string& addr, uint16_t port, const std::string& req) {
      HttpConn c(addr, port);
      c.send(req);
      HttpResponse r = c.read(8000);
      r.headers.emplace_back("body-size", std::to_string(r.body.size()));
      r.body = sha256_hex(r.body);
      list.push_back(r);
    };
    // Up: routed (Host py:8080 -> cluster py), Content-Length.
    {
      HttpConn c("198.18.2.100", 8080);
      c.send(post("py:8080", "/upload", upload));
      list.push_back(c.read(8000));
    }
    // Down: nginx keeps the connection alive; python's http.server is HTTP/1.0 and closes.
    fetch(kSrv1, 9080, get("v1", "/files/blob"));
    fetch(kSrv2, 8000, get(kSrv2 + ":8000", "/blob"));
    out = HttpResponse::serialize_list(list);
  }));
  ASSERT_EQ(rs.size(), 3u);
  expect_upload(rs[0], upload.size(), sha256_hex(upload));
  for (size_t i = 1; i < 3; ++i) {
    const char* from = i == 1 ? "nginx (keep-alive)" : "python3 -m http.server (HTTP/1.0, closes)";
    EXPECT_EQ(rs[i].status, 200) << "download from " << from << ": " << rs[i];
    if (rs[i].status != 200) continue;
    EXPECT_EQ(rs[i].header("content-length"), std::to_string(blob.size())) << rs[i];
    EXPECT_EQ(rs[i].header("body-size"), std::to_string(blob.size()));
    EXPECT_EQ(rs[i].body, sha) << "download from " << from;
  }
}

TEST_P(Http, ExpectContinueWaitsForTheUpstreamsGoAhead) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy();
  const std::string body = random_bytes(1024 * 1024, 31);
  auto rs = HttpResponse::parse_list(run_in(client(), [&](std::string& out) {
    std::vector<HttpResponse> list;
    HttpConn c(kSrv1, 8080);
    c.send("POST /upload HTTP/1.1\r\nHost: py\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nExpect: 100-continue\r\n\r\n");
    // The client holds the body back until the 100 arrives (curl waits 1 s, then sends).
    list.push_back(c.read(3000));
    c.send(body);
    list.push_back(c.read(10000));
    out = HttpResponse::serialize_list(list);
  }));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, 100) << rs[0];
  expect_upload(rs[1], body.size(), sha256_hex(body));
}

TEST_P(Http, UpgradeIsTunnelledBothWays) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy();
  // Raw bytes after the 101, including some that look like HTTP: none may be parsed.
  const std::string payload =
      "GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n" + random_bytes(256 * 1024, 37);
  auto out = run_in(client(), [&](std::string& o) {
    HttpConn c(kSrv1, 8080);
    c.send(get("py", "/upgrade", "Connection: Upgrade\r\nUpgrade: websocket\r\n"));
    HttpResponse r = c.read(3000, true);
    std::string echoed;
    if (r.status == 101) {
      std::thread writer([&] { c.send(payload); });
      echoed = c.read_raw(payload.size(), 10000);
      writer.join();
      ::shutdown(c.fd(), SHUT_WR);
      r.error = c.wait_closed(3000);  // the server ends its side after our EOF
    }
    r.headers.emplace_back("echoed-size", std::to_string(echoed.size()));
    r.body = sha256_hex(echoed);
    o = r.serialize();
  });
  HttpResponse r = HttpResponse::parse(out);
  ASSERT_EQ(r.status, 101) << r;
  EXPECT_EQ(r.header("upgrade"), "websocket") << r;
  EXPECT_EQ(r.header("connection"), "upgrade") << r;
  EXPECT_EQ(r.header("echoed-size"), std::to_string(payload.size()));
  EXPECT_EQ(r.body, sha256_hex(payload));
  EXPECT_EQ(r.error, "eof");
}

INSTANTIATE_TEST_SUITE_P(Modes, Http, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
