"""What the bookinfo apps share: a threaded HTTP/1.1 server on 9080 that never looks
names up, and the plain HTTP client the sample uses (one request per connection)."""
import http.client
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The headers Istio's sample apps copy from an incoming request to the calls it makes
# (productpage.py getForwardHeaders, the reviews app's propagated headers).
FORWARD_HEADERS = (
    "x-request-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
    "x-b3-flags", "b3", "x-ot-span-context", "traceparent", "tracestate", "end-user",
    "user-agent",
)

SERVICES_DOMAIN = os.environ.get("SERVICES_DOMAIN", "service.consul")


def service_url(name):
    return "http://{}{}:9080".format(name, "." + SERVICES_DOMAIN if SERVICES_DOMAIN else "")


def forward_headers(incoming):
    return {k: incoming[k] for k in FORWARD_HEADERS if incoming.get(k) is not None}


def get_json(url, headers, timeout):
    """GET url; (status, parsed body or None). Raises OSError on timeouts and resets."""
    assert url.startswith("http://")
    hostport, _, path = url[len("http://"):].partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request("GET", "/" + path, headers=headers)
        res = conn.getresponse()
        body = res.read()
        try:
            return res.status, json.loads(body)
        except ValueError:
            return res.status, None
    finally:
        conn.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bookinfo"
    routes = {}  # path prefix -> function(handler, rest) -> (status, content type, body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        for prefix, fn in self.routes.items():
            if path == prefix or path.startswith(prefix + "/"):
                status, ctype, body = fn(self, path[len(prefix):].lstrip("/"))
                break
        else:
            status, ctype, body = 404, "text/plain", "not found\n"
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj):
        return status, "application/json", json.dumps(obj)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.headers.get("x-request-id", "-"), fmt % args))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        # HTTPServer.server_bind resolves its own name; a namespace has no DNS to ask.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "localhost", self.server_address[1]


def serve(routes, port=9080):
    handler = type("AppHandler", (Handler,), {"routes": routes})
    Server(("0.0.0.0", port), handler).serve_forever()
