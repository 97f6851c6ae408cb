"""The HTTP client under the SDK: msb serve's unix socket or TCP, JSON and NDJSON."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from typing import Any, Dict, Iterator, Optional

from .errors import MsbError, error_from

# How long a request may take on the wire (a create boots a VM; wait blocks).
TIMEOUT_S = 3600.0
START_WAIT_S = 10.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _msb_binary() -> str:
    exe = os.environ.get("MSB_BIN") or shutil.which("msb")
    if not exe:
        raise MsbError("no_server", "msb is not installed (no msb on PATH): install it, or set MSB_API_URL", 0)
    return exe


def default_socket() -> str:
    """Where the user's own msb serve listens (msb serve --print-socket)."""
    out = subprocess.run([_msb_binary(), "serve", "--print-socket"], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise MsbError("no_server", "msb serve --print-socket failed: " + out.stderr.strip(), 0)
    return out.stdout.strip()


class Client:
    """One server: a unix socket (the default) or http(s)://host:port with a token."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, autostart: bool = True) -> None:
        url = url if url is not None else os.environ.get("MSB_API_URL")
        self.token = token if token is not None else os.environ.get("MSB_API_TOKEN")
        self._socket: Optional[str] = None
        self._host: Optional[str] = None
        self._port = 0
        self._tls = False
        if not url:
            self._socket = default_socket()
            if autostart:
                self._ensure_server()
        elif url.startswith("unix://"):
            self._socket = url[len("unix://"):]
        else:
            u = urllib.parse.urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError(f"MSB_API_URL {url!r}: expected http://HOST:PORT, https://HOST:PORT or unix:///PATH")
            self._host, self._tls = u.hostname, u.scheme == "https"
            self._port = u.port or (443 if self._tls else 80)

    # -- the server --

    def _reachable(self) -> bool:
        try:
            c = _UnixConnection(self._socket or "", 2.0)
            c.connect()
            c.close()
            return True
        except OSError:
            return False

    def _ensure_server(self) -> None:
        """Start msb serve for this user when none answers: it outlives this process."""
        if self._reachable():
            return
        log = open(os.devnull, "wb")
        subprocess.Popen([_msb_binary(), "serve", "-q"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, close_fds=True)
        log.close()
        deadline = time.monotonic() + START_WAIT_S
        while time.monotonic() < deadline:
            if self._reachable():
                return
            time.sleep(0.05)
        raise MsbError("no_server", f"msb serve did not start listening on {self._socket}", 0)

    # -- requests --

    def _conn(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        t = TIMEOUT_S if timeout is None else timeout
        if self._socket:
            return _UnixConnection(self._socket, t)
        if self._tls:
            return http.client.HTTPSConnection(self._host or "", self._port, timeout=t,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host or "", self._port, timeout=t)

    def _send(self, method: str, path: str, query: Optional[Dict[str, Any]], body: Any,
              content_type: str, timeout: Optional[float]):
        if query:
            items = []
            for k, v in query.items():
                if v is None:
                    continue
                for one in (v if isinstance(v, (list, tuple)) else [v]):
                    items.append((k, "true" if one is True else "false" if one is False else str(one)))
            if items:
                path += "?" + urllib.parse.urlencode(items)
        headers = {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            if content_type == "application/json":
                data = json.dumps(body).encode()
            else:
                data = body
            headers["Content-Type"] = content_type
        c = self._conn(timeout)
        try:
            if hasattr(data, "read"):
                headers["Transfer-Encoding"] = "chunked"
                c.request(method, path, body=_chunks(data), headers=headers, encode_chunked=True)
            else:
                c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
        except OSError as e:
            c.close()
            raise MsbError("connection", f"{method} {path}: {e}", 0) from e
        if r.status >= 400:
            raw = r.read()
            c.close()
            raise error_from(r.status, raw)
        return c, r

    def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
                timeout: Optional[float] = None) -> Any:
        """A JSON request; the decoded answer (None for 204)."""
        if method in ("GET", "DELETE") and body is None:
            c, r = self._send(method, path, query, None, "", timeout)
        else:
            c, r = self._send(method, path, query, {} if body is None else body, "application/json", timeout)
        try:
            raw = r.read()
        finally:
            c.close()
        if r.status == 204 or not raw:
            return None
        ctype = r.getheader("Content-Type", "")
        return json.loads(raw) if ctype.startswith("application/json") else raw.decode()

    def stream(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
               timeout: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        """An NDJSON stream, one decoded line at a time; closing the iterator ends it."""
        c, r = self._send(method, path, query, body, "application/json" if body is not None else "", timeout)
        try:
            while True:
                line = r.readline()
                if not line:
                    return
                if line.strip():
                    ev = json.loads(line)
                    if ev.get("type") == "error" and "error" in ev:
                        e = ev["error"]
                        raise MsbError(e.get("code", "internal"), e.get("message", ""), 500, e.get("field"))
                    yield ev
        finally:
            c.close()

    def download(self, path: str, query: Dict[str, Any], out, timeout: Optional[float] = None) -> int:
        """A raw body into the file object out, in chunks; the bytes written."""
        c, r = self._send("GET", path, query, None, "", timeout)
        n = 0
        try:
            while True:
                b = r.read(65536)
                if not b:
                    return n
                out.write(b)
                n += len(b)
        finally:
            c.close()

    def upload(self, method: str, path: str, query: Dict[str, Any], data, content_type: str,
               timeout: Optional[float] = None) -> None:
        """A raw body (bytes, or a file object streamed in chunks)."""
        c, r = self._send(method, path, query, data, content_type, timeout)
        try:
            r.read()
        finally:
            c.close()


def _chunks(f, size: int = 65536):
    while True:
        b = f.read(size)
        if not b:
            return
        yield b
