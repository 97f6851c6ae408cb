#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A registry front with bearer-token auth, for the e2e pull tests.

Three HTTP servers on loopback, in one process, in front of a real
registry (UPSTREAM, Debian's docker-registry without auth):

  front   127.0.0.1:P  the registry msb talks to: /v2/... wants
                       "Authorization: Bearer <token>", else answers 401
                       with a Bearer challenge naming the token server;
                       with a token it proxies to UPSTREAM.  With
                       --redirect-blobs, a blob GET is redirected once to
                       itself (/same/..., same origin, token still wanted)
                       and from there to the blob host.
  token   127.0.0.1:T  /token issues a token for "Authorization: Basic"
                       with USER:PASSWORD, 401 otherwise.
  blobs   127.0.0.2:B  serves blobs from UPSTREAM to anyone: what a
                       registry's storage host is.  With --storage-asks it
                       answers 401 instead, with a Bearer challenge naming
                       a realm of its own (/token, which issues nothing):
                       a storage host fishing for the registry's password.

Every request is logged to LOG as one line, "ROLE PATH AUTHORIZATION" ("-"
when there is none), which is what the tests read.  The ports go to
PORTFILE, "P T B", once all three listen.  Docker's token auth needs a
JWT signed with RSA, which python3's standard library cannot make; the
front checks its own tokens instead, which is all msb can see anyway.

usage: auth-registry.py UPSTREAM LOG PORTFILE USER:PASSWORD [--redirect-blobs] [--storage-asks]
"""
import base64
import http.server
import os
import re
import secrets
import sys
import threading
import urllib.error
import urllib.request

upstream, log_path, port_file, creds = sys.argv[1:5]
redirect_blobs = "--redirect-blobs" in sys.argv[5:]
storage_asks = "--storage-asks" in sys.argv[5:]
expected_basic = "Basic " + base64.b64encode(creds.encode()).decode()
tokens = set()
lock = threading.Lock()
ports = {}

BLOB = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
REPO = re.compile(r"^/v2/(.+)/(manifests|blobs)/")


def log(role, path, auth):
    with lock, open(log_path, "a") as f:
        f.write(f"{role} {path} {auth or '-'}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    role = ""

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def proxy(self, path):
        """GET path from the upstream registry and pass the answer on."""
        req = urllib.request.Request(upstream + path)
        for h in ("Accept", "Range"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req) as r:
                status, body, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, body, hdrs = e.code, e.read(), e.headers
        keep = ("Content-Type", "Docker-Content-Digest", "Content-Range")
        self.reply(status, body, [(k, hdrs[k]) for k in keep if hdrs.get(k)])

    def do_GET(self):
        auth = self.headers.get("Authorization")
        log(self.role, self.path, auth)
        getattr(self, "get_" + self.role)(auth)

    do_HEAD = do_GET

    def get_token(self, auth):
        if not self.path.startswith("/token"):
            return self.reply(404)
        if auth != expected_basic:
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              [("WWW-Authenticate", 'Basic realm="msb-test-token"')])
        tok = secrets.token_hex(16)
        with lock:
            tokens.add(tok)
        self.reply(200, ('{"token":"%s","expires_in":300}' % tok).encode(),
                   [("Content-Type", "application/json")])

    def get_front(self, auth):
        path = self.path
        same = path.startswith("/same/")
        if same:
            path = path[len("/same"):]
        with lock:
            ok = auth is not None and auth.startswith("Bearer ") and auth[7:] in tokens
        if not ok:
            m = REPO.match(path)
            scope = ',scope="repository:%s:pull"' % m.group(1) if m else ""
            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="msb-test"%s' % (ports["token"], scope)
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", challenge)])
        if path == "/v2/":
            return self.reply(200, b"{}", [("Content-Type", "application/json")])
        if redirect_blobs and BLOB.match(path):
            # first to this host (credentials stay), then to storage (they must not)
            to = ("http://127.0.0.2:%d%s" % (ports["blobs"], path)) if same else ("/same" + path)
            return self.reply(307, b"", [("Location", to)])
        self.proxy(path)

    def get_blobs(self, auth):
        if storage_asks:
            challenge = 'Bearer realm="http://127.0.0.2:%d/token",service="storage"' % ports["blobs"]
            return self.reply(401, b"", [("WWW-Authenticate", challenge)])
        if not BLOB.match(self.path):
            return self.reply(404)
        self.proxy(self.path)


def serve(role, addr):
    cls = type(role, (Handler,), {"role": role})
    srv = http.server.ThreadingHTTPServer((addr, 0), cls)
    srv.daemon_threads = True
    ports[role] = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()


serve("front", "127.0.0.1")
serve("token", "127.0.0.1")
serve("blobs", "127.0.0.2")
open(log_path, "a").close()
with open(port_file + ".tmp", "w") as f:
    f.write("%d %d %d\n" % (ports["front"], ports["token"], ports["blobs"]))
os.rename(port_file + ".tmp", port_file)
threading.Event().wait()
