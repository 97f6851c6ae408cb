#!/usr/bin/env python3
"""The servers of the network test rig (tests/e2e/net-rig.sh), one process
per namespace.  Each SPEC is KIND:ADDR:PORT[:NAME]; ADDR may be IPv6 in
brackets ([2001:db8:1::10]).

  http   GET /        -> "NAME\n"  (who answered)
         GET /bytes/N -> N bytes of 'x' (N <= 1 GiB)
  udp    each datagram D is answered with "NAME:D"
  sink   TCP: read "N\n" and N bytes, answer "BYTES NANOSECONDS\n" (first byte to last)
  source TCP: read one line "N\n", send N zero bytes, close

Every request is logged to --log as "KIND NAME PEER DETAIL", one line, so a
test can tell whether a denied connection ever reached its server.  The
process exits by itself after --lifetime seconds."""
import argparse
import http.server
import os
import socket
import socketserver
import sys
import threading
import time

LOCK = threading.Lock()
LOG = None


def log(*words):
    with LOCK:
        LOG.write(" ".join(str(w) for w in words) + "\n")
        LOG.flush()


def parse(spec):
    kind, rest = spec.split(":", 1)
    if rest.startswith("["):
        addr, rest = rest[1:].split("]:", 1)
    else:
        addr, rest = rest.split(":", 1)
    port, _, name = rest.partition(":")
    return kind, addr, int(port), name or addr


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def bound_socket(addr, port, kind):
    s = socket.socket(family(addr), socket.SOCK_DGRAM if kind == socket.SOCK_DGRAM else socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(addr) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    return s


def http_server(addr, port, name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            log("http", name, self.client_address[0], self.path)
            if self.path.startswith("/bytes/"):
                n = min(int(self.path[7:]), 1 << 30)
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                chunk = b"x" * 65536
                while n > 0:
                    self.wfile.write(chunk[: min(n, len(chunk))])
                    n -= min(n, len(chunk))
                return
            body = (name + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = family(addr)

        def handle_error(self, request, client_address):
            # a client that goes away mid-answer (a test killing a
            # download) is expected: a line in the log, no traceback
            log("http-error", name, client_address[0], sys.exc_info()[1])

    srv = Server((addr, port), Handler, bind_and_activate=False)
    if family(addr) == socket.AF_INET6:
        srv.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    srv.server_bind()
    srv.server_activate()
    return srv.serve_forever


def udp_server(addr, port, name):
    s = bound_socket(addr, port, socket.SOCK_DGRAM)

    def run():
        while True:
            data, peer = s.recvfrom(65535)
            log("udp", name, peer[0], data[:60].decode(errors="replace").strip())
            s.sendto(name.encode() + b":" + data, peer)

    return run


def tcp_server(addr, port, name, handle):
    s = bound_socket(addr, port, socket.SOCK_STREAM)
    s.listen(128)

    def run():
        while True:
            c, peer = s.accept()
            threading.Thread(target=handle, args=(c, peer, name), daemon=True).start()

    return run


def readline(c):
    line = b""
    while not line.endswith(b"\n") and len(line) < 32:
        d = c.recv(1)
        if not d:
            return None
        line += d
    return line


def sink(c, peer, name):
    # "N\n" then N bytes; the answer comes after the N-th byte, not at EOF:
    # passt (0.0~git20230309) often loses the server's FIN to a guest that
    # has half-closed (test-net.sh t_16b), so a client waiting for EOF hangs
    with c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        line = readline(c)
        if line is None:
            return
        want = int(line)
        buf = bytearray(1 << 20)
        total, t0 = 0, None
        while total < want:
            n = c.recv_into(buf, min(len(buf), want - total))
            if n == 0:
                break
            if t0 is None:
                t0 = time.monotonic_ns()
            total += n
        ns = time.monotonic_ns() - t0 if t0 else 0
        log("sink", name, peer[0], total, ns)
        c.sendall(b"%d %d\n" % (total, ns))


def source(c, peer, name):
    with c:
        line = readline(c)
        if line is None:
            return
        n = min(int(line), 4 << 30)
        log("source", name, peer[0], n)
        chunk = bytes(1 << 20)
        while n > 0:
            c.sendall(chunk[: min(n, len(chunk))])
            n -= min(n, len(chunk))


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=3600)
    ap.add_argument("--ready", help="file written once every socket is bound")
    ap.add_argument("spec", nargs="+")
    a = ap.parse_args()
    LOG = open(a.log, "a", buffering=1)
    runs = []
    for spec in a.spec:
        kind, addr, port, name = parse(spec)
        if kind == "http":
            runs.append(http_server(addr, port, name))
        elif kind == "udp":
            runs.append(udp_server(addr, port, name))
        elif kind == "sink":
            runs.append(tcp_server(addr, port, name, sink))
        elif kind == "source":
            runs.append(tcp_server(addr, port, name, source))
        else:
            sys.exit(f"net-world: unknown kind in '{spec}'")
    for r in runs:
        threading.Thread(target=r, daemon=True).start()
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(a.ready + ".tmp", a.ready)
    time.sleep(a.lifetime)


if __name__ == "__main__":
    main()
