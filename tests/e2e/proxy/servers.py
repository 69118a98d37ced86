#!/usr/bin/python3
"""Upstream servers for the proxy e2e tier, each a real server on a real socket.

  servers.py http NAME ADDR PORT   HTTP/1.1 app (paths below), threaded, keep-alive
  servers.py echo ADDR PORT        raw TCP echo until EOF (TLS-like bytes, Upgrade tests)
  servers.py greet ADDR PORT       server-first line protocol, like SMTP: greets, then
                                   answers "250 <line>" per line and "221 bye" to QUIT
  servers.py flood-reset ADDR PORT sends up to 8 MiB (1 s at most, never reads), waits 1 s,
                                   then resets the connection
  servers.py sink ADDR PORT        accepts with a 4 KiB receive buffer, never reads, holds
                                   each connection for 30 s

HTTP paths:
  /echo           200, JSON {method, path, headers, body_len}
  /upload         reads the body (Content-Length or chunked; Expect: 100-continue is
                  answered by http.server), 200 JSON {len, sha256}
  /chunked?file=F streams file F as a chunked body, chunk sizes varying
  /slow?s=S       sleeps S seconds, then 200 "slow"
  /late?s=S&tag=T sleeps S seconds, then 200 T (no route timeout applies to it)
  /early?n=N      200 with N bytes at once, without reading the request body; holds the
                  connection 2 s, then closes it
  /interim?n=N    N interim responses (100 Continue; 0: until the peer stops reading or 3 s
                  pass), then 200 "final"
  /reset          reads the request, then resets the connection (no response)
  /close          reads the request, then closes the connection (no response)
  /flaky          503 the first time an x-request-id is seen, 200 when it comes again
  /upgrade        101 Switching Protocols, then echoes raw bytes until EOF
  anything else   200 NAME
"""
import hashlib
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "py"
    seen_ids = set()
    seen_lock = threading.Lock()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body, ctype="text/plain", extra=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()  # CRLF after the chunk
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def abort(self, reset):
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # the connection was aborted on purpose

    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def route(self):
        path, _, query = self.path.partition("?")
        q = dict(urllib.parse.parse_qsl(query))
        if path == "/echo":
            body = self.read_body()
            self.reply(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                "body_len": len(body)}), "application/json")
        elif path == "/upload":
            body = self.read_body()
            self.reply(200, json.dumps({"len": len(body),
                                        "sha256": hashlib.sha256(body).hexdigest()}),
                       "application/json")
        elif path == "/chunked":
            self.read_body()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sizes = [1, 7, 100, 4096, 16384, 65536, 1000, 333333]
            with open(q["file"], "rb") as f:
                i = 0
                while True:
                    data = f.read(sizes[i % len(sizes)])
                    i += 1
                    if not data:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    if i % 16 == 0:
                        self.wfile.flush()
                        time.sleep(0.001)
            self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/slow") or path == "/late":
            self.read_body()
            time.sleep(float(q.get("s", "3")))
            self.reply(200, q.get("tag", "slow"))
        elif path == "/early":
            self.reply(200, b"e" * int(q.get("n", "1000")))
            self.wfile.flush()
            time.sleep(2)
            self.close_connection = True
        elif path == "/interim":
            self.read_body()
            n = int(q.get("n", "0"))
            self.connection.settimeout(3)
            deadline = time.monotonic() + 3
            sent = 0
            try:
                while (n == 0 and time.monotonic() < deadline) or sent < n:
                    self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    sent += 1
                self.reply(200, "final")
            except OSError:
                self.close_connection = True
        elif path == "/reset":
            self.read_body()
            self.abort(reset=True)
        elif path == "/close":
            self.read_body()
            self.abort(reset=False)
        elif path.startswith("/flaky"):
            self.read_body()
            rid = self.headers.get("x-request-id", "")
            with Handler.seen_lock:
                first = rid not in Handler.seen_ids
                Handler.seen_ids.add(rid)
            if first:
                self.reply(503, "try again")
            else:
                self.reply(200, "recovered")
        elif path == "/upgrade":
            self.send_response(101)
            self.send_header("Upgrade", self.headers.get("Upgrade", "websocket"))
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            echo(self.connection)
            self.close_connection = True
        else:
            self.read_body()
            self.reply(200, Handler.name)


def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        echo(self.request)


class GreetHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 sockmesh-e2e ready\r\n")
        for line in self.rfile:
            line = line.rstrip(b"\r\n")
            if line.upper() == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            self.wfile.write(b"250 " + line + b"\r\n")


class FloodResetHandler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(1)
        try:
            conn.sendall(b"f" * (8 << 20))
        except OSError:
            pass  # the peer stopped reading: enough is queued
        time.sleep(1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class SinkHandler(socketserver.BaseRequestHandler):
    def handle(self):
        time.sleep(30)


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class HttpServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind would look our own name up (getfqdn): DNS, from a netns.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    mode = sys.argv[1]
    if mode == "http":
        Handler.name = sys.argv[2]
        server = HttpServer((sys.argv[3], int(sys.argv[4])), Handler)
    else:
        handler = {"echo": EchoHandler, "greet": GreetHandler,
                   "flood-reset": FloodResetHandler, "sink": SinkHandler}[mode]
        server = TcpServer((sys.argv[2], int(sys.argv[3])), handler, bind_and_activate=False)
        if mode == "sink":
            # Set before listen(): accepted sockets inherit it and advertise a tiny window.
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server.server_bind()
        server.server_activate()
    server.serve_forever()


if __name__ == "__main__":
    main()
