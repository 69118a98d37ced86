#!/usr/bin/python3
"""Client side of the sidecar bench, run inside the app netns as the workload's user.

  probe URL          one GET; prints the status line and the response headers (lower-case
                     names), exit 0 on a 2xx.
  get URL            one GET; prints the body (the proxy's admin /stats, say).
  hold URL N         opens N keep-alive connections (its connects are intercepted like any
                     workload's), sends one GET on each and reads the response, so every
                     sidecar holds a live HTTP session, not a socket still being sniffed;
                     prints "ready N" and holds them until SIGTERM, then resets them.
"""
import selectors
import signal
import socket
import struct
import sys
import time
import urllib.request
from urllib.parse import urlsplit


def target(url):
    u = urlsplit(url)
    return u.hostname, u.port or 80, f"{u.hostname}:{u.port or 80}"


def request_bytes(authority):
    return f"GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: sm-proxy-bench\r\n\r\n".encode()


def response_complete(buf):
    """(done, status, headers) once the head and a Content-Length body have arrived."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False, 0, None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return len(buf) >= end + 4 + length, status, (lines[0], headers)


def probe(url):
    host, port, authority = target(url)
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(request_bytes(authority))
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            done, status, head = response_complete(buf)
            if done:
                break
    done, status, head = response_complete(buf)
    if not head:
        print("no response head", file=sys.stderr)
        return 1
    print(head[0])
    for name, value in head[1].items():
        print(f"{name}: {value}")
    return 0 if 200 <= status < 300 else 1


def get(url):
    with urllib.request.urlopen(url, timeout=3) as r:
        sys.stdout.write(r.read().decode())
    return 0


def hold(url, n, in_flight=256, timeout_s=60):
    host, port, authority = target(url)
    req = request_bytes(authority)
    sel = selectors.DefaultSelector()
    held, started, failures = [], 0, []
    deadline = time.monotonic() + timeout_s
    # At most in_flight handshakes and requests at once: the listen backlogs stay short and
    # the sidecars' upstream pools stay small, as with real keep-alive clients.
    while len(held) + len(failures) < n:
        while started < n and started - len(held) - len(failures) < in_flight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE, [b""])
            started += 1
        if time.monotonic() > deadline:
            failures.append(f"timeout with {len(held)} connections up")
            break
        for key, events in sel.select(timeout=1):
            s, state = key.fileobj, key.data
            try:
                if events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, "connect")
                    s.send(req)  # tiny: one send always takes it whole
                    sel.modify(s, selectors.EVENT_READ, state)
                    continue
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed before the response")
                state[0] += chunk
                done, status, _ = response_complete(state[0])
                if done:
                    sel.unregister(s)
                    if not 200 <= status < 300:
                        raise OSError(f"status {status}")
                    held.append(s)
            except OSError as e:
                if s.fileno() >= 0:
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    s.close()
                failures.append(str(e))
    if failures:
        print(f"hold: {len(failures)} failed, first: {failures[0]}", file=sys.stderr)
        return 1
    print(f"ready {len(held)}", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        signal.pause()
    # Reset, not FIN: 10,000 client-side TIME_WAIT sockets would stay for 60 s, and the next
    # sidecar's 10,000 connects from the same address then came up ten times slower.
    linger_0 = struct.pack("ii", 1, 0)
    for s in held:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_0)
        s.close()
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "probe":
        return probe(argv[2])
    if len(argv) == 3 and argv[1] == "get":
        return get(argv[2])
    if len(argv) == 4 and argv[1] == "hold":
        return hold(argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
