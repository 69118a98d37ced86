#!/usr/bin/python3
"""A tiny Zipkin-compatible collector (test and demo infrastructure, not the product):
accepts Zipkin's v2 API `POST /api/v2/spans` (a JSON list of spans, as the sidecars send
with --zipkin-address), keeps them in memory, prints each trace as a tree once it has been
quiet for a second, and answers `GET /api/v2/traces` (every trace, newest first, as Zipkin's
query API) and `GET /api/v2/trace/<traceId>`.

usage: zipkin_collector.py [--addr A] [--port 9411]"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
TRACES = {}  # traceId -> [span]
LAST = {}  # traceId -> monotonic time of its last span
PRINTED = set()
STATS = {"posts": 0, "spans": 0, "rejected": 0}


def render_tree(spans):
    """Lines drawing one trace: each span under its parent, with service, kind, name, start
    offset and duration. Envoy-style shared spans (a SERVER span that reuses its caller's
    CLIENT span id) go under that CLIENT span; a CLIENT span goes under the SERVER span of
    the request it was made for. Spans whose parent is missing are roots."""
    clients, servers, others = {}, {}, {}
    for s in spans:
        table = {"CLIENT": clients, "SERVER": servers}.get(s.get("kind"), others)
        table.setdefault(s.get("id"), s)

    def parent_of(s):
        if s.get("kind") == "SERVER" and s.get("id") in clients:
            return clients[s["id"]]  # the shared span's client side
        p = s.get("parentId")
        if not p:
            return None
        return servers.get(p) or clients.get(p) or others.get(p)

    children = {}
    roots = []
    for s in sorted(spans, key=lambda s: s.get("timestamp", 0)):
        parent = parent_of(s)
        if parent is None or parent is s:
            roots.append(s)
        else:
            children.setdefault(id(parent), []).append(s)
    t0 = min((s.get("timestamp", 0) for s in spans), default=0)
    lines = []

    def walk(s, depth, seen):
        if id(s) in seen:
            return
        seen.add(id(s))
        svc = (s.get("localEndpoint") or {}).get("serviceName", "?")
        tags = s.get("tags") or {}
        status = tags.get("http.status_code", "")
        lines.append("{}{} {} {}  +{:.1f} ms  {:.1f} ms{}".format(
            "   " * (depth - 1) + "└─ " if depth else "", svc, s.get("kind", "?"),
            s.get("name", "?"), (s.get("timestamp", t0) - t0) / 1000.0,
            s.get("duration", 0) / 1000.0, "  " + status if status else ""))
        for c in children.get(id(s), []):
            walk(c, depth + 1, seen)
    seen = set()
    for r in roots:
        walk(r, 0, seen)
    for s in spans:  # a cycle of bad parent ids still shows every span
        walk(s, 0, seen)
    return lines


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.split("?")[0] != "/api/v2/spans":
            return self.reply(404, "{}")
        try:
            spans = json.loads(raw)
            if not isinstance(spans, list) or not all(
                    isinstance(s, dict) and s.get("traceId") and s.get("id") for s in spans):
                raise ValueError("a list of spans with traceId and id")
        except ValueError as e:
            with LOCK:
                STATS["rejected"] += 1
            return self.reply(400, json.dumps({"error": str(e)}))
        now = time.monotonic()
        with LOCK:
            STATS["posts"] += 1
            STATS["spans"] += len(spans)
            for s in spans:
                TRACES.setdefault(s["traceId"], []).append(s)
                LAST[s["traceId"]] = now
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        with LOCK:
            if path == "/api/v2/traces":
                order = sorted(TRACES, key=lambda t: LAST[t], reverse=True)
                return self.reply(200, json.dumps([TRACES[t] for t in order]))
            if path.startswith("/api/v2/trace/"):
                t = TRACES.get(path.rsplit("/", 1)[1])
                return self.reply(200 if t else 404, json.dumps(t or []))
            if path == "/stats":
                return self.reply(200, json.dumps(STATS))
            if path == "/health":
                return self.reply(200, "OK\n", "text/plain")
        self.reply(404, "{}")

    def log_message(self, fmt, *args):
        pass


def printer():
    """Prints a trace once no span of it arrived for a second."""
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        with LOCK:
            ready = [t for t in TRACES if t not in PRINTED and now - LAST[t] > 1.0]
            batches = [(t, list(TRACES[t])) for t in ready]
            PRINTED.update(ready)
        for t, spans in batches:
            print("trace {} ({} spans)".format(t, len(spans)))
            for line in render_tree(spans):
                print("  " + line)
            sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9411)
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.addr, args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=printer, daemon=True).start()
    print("zipkin collector on {}:{} (POST /api/v2/spans)".format(args.addr, args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
