#!/usr/bin/python3
"""Writes the seed corpus of connection_fuzzer (connection_corpus/), one file per path of
a connection's life. The encoding is connection_fuzzer.cpp's: a config byte, then
operations. Run it again after changing the encoding."""
import os
import struct
import sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "connection_corpus")


class Program:
    def __init__(self, cfg=0):
        self.b = bytearray([cfg])

    def accept(self, which):  # 0 routed, 1 passthrough, 2 inbound v4, 3 inbound v6, 4 loop
        self.b += bytes([0, which]); return self

    def client(self, data, which=0, piece=0):
        data = data.encode() if isinstance(data, str) else data
        self.b += bytes([1, which]) + struct.pack("<H", len(data)) + bytes([piece]) + data
        return self

    def client_close(self, which=0):
        self.b += bytes([3, which]); return self

    def client_reset(self, which=0):
        self.b += bytes([4, which]); return self

    def connect(self, which=0, fail=False):
        self.b += bytes([5, which, 1 if fail else 0]); return self

    def upstream(self, data, which=0, piece=0):
        data = data.encode() if isinstance(data, str) else data
        self.b += bytes([6, which]) + struct.pack("<H", len(data)) + bytes([piece]) + data
        return self

    def upstream_close(self, which=0, reset=False):
        self.b += bytes([8, which, 1 if reset else 0]); return self

    def read(self, upstream, which=0, max_units=255):
        self.b += bytes([9, (which << 1) | (1 if upstream else 0), max_units]); return self

    def advance(self, units):  # 5 ms each
        self.b += bytes([10, units]); return self

    def batch(self):
        self.b += bytes([11]); return self


OK = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nmine"
seeds = {
    "keepalive": Program().accept(0).client("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
    .connect().read(True).upstream(OK).read(False)
    .client("GET /2 HTTP/1.1\r\nHost: svc:80\r\n\r\n").read(True).upstream(OK).read(False),
    "early_response": Program().accept(0)
    .client("POST /e HTTP/1.1\r\nHost: svc\r\nContent-Length: 40\r\n\r\n")
    .connect().upstream(OK).client("GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n", piece=7)
    .read(False).client_close(),
    "tunnel": Program().accept(1).client(b"\x16\x03\x01hello").connect().read(True)
    .upstream("world").read(False).client_close().upstream_close(),
    "pipeline_400": Program().accept(0)
    .client("GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /a b HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
    .connect().upstream(OK).read(False).client("x" * 300),
    "interim_chunked": Program().accept(0)
    .client("POST /u HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
    .connect().upstream("HTTP/1.1 100 Continue\r\n\r\n").client("5\r\nhello\r\n0\r\n\r\n")
    .upstream("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nmine\r\n0\r\n\r\n")
    .read(False),
    "upgrade": Program().accept(0)
    .client("GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    .connect().upstream("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes")
    .client("more frames").read(True).read(False).upstream_close(reset=True),
    "inbound_v6": Program().accept(3).client("GET / HTTP/1.1\r\nHost: app\r\n\r\n")
    .connect().upstream(OK).read(False).accept(2).client("GET / HTTP/1.1\r\nHost: app\r\n\r\n", which=1)
    .connect(fail=True),
    "retry_503": Program().accept(0).client("GET /retry HTTP/1.1\r\nHost: svc\r\n\r\n")
    .connect().upstream("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
    .advance(10).connect().upstream(OK).read(False),
    "stream_idle": Program(cfg=2).accept(0).client("GET /x HTTP/1.1\r\nHost: svc\r\n\r\n")
    .connect().advance(20).read(False).client_reset(),
    "backpressure": Program(cfg=1 | (1 << 4)).accept(1).client(b"\x16\x03\x01").connect()
    .client("b" * 3000, piece=1).batch().upstream("c" * 3000, piece=3).batch().read(True)
    .read(False),
}
os.makedirs(out, exist_ok=True)
for name, prog in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(prog.b))
print("wrote %d seeds to %s" % (len(seeds), out), file=sys.stderr)
