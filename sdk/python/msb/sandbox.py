"""Sandboxes: create, find, exec, logs, metrics, files as trees, and their life."""
from __future__ import annotations

import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from ._client import Client
from .errors import MsbError

Size = Union[int, str]


@dataclass
class ExecResult:
    """What a command printed and how it ended."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class ExecEvent:
    """One event of a streamed exec: type "started", "stdout", "stderr" (data) or "exit" (exit_code)."""

    type: str
    data: str = ""
    exit_code: Optional[int] = None
    timed_out: bool = False


@dataclass
class LogRecord:
    time: str
    stream: str  # "stdout" or "stderr"
    data: str
    partial: bool = False


@dataclass
class Metrics:
    running: bool
    cpu_seconds: float
    memory_bytes: int
    disk_bytes: int
    disk_size_bytes: int
    net_rx_bytes: Optional[int] = None
    net_tx_bytes: Optional[int] = None


@dataclass
class SandboxInfo:
    name: str
    image: str
    command: str
    status: str
    exit_code: Optional[int]
    created: Optional[int]
    started: Optional[int]
    finished: Optional[int]
    cpus: int
    memory_mib: int
    tty: bool = False
    interactive: bool = False
    labels: Dict[str, str] = field(default_factory=dict)


def _exec_body(command: Sequence[str], env: Optional[Dict[str, str]], workdir: Optional[str], user: Optional[str],
               stdin: Optional[str], timeout: Optional[float], max_output: Optional[int],
               binary: bool) -> Dict[str, Any]:
    if isinstance(command, str):
        raise TypeError("command: a list of arguments, e.g. [\"sh\", \"-c\", \"echo hi\"]")
    body: Dict[str, Any] = {"command": list(command)}
    if env:
        body["env"] = dict(env)
    if workdir:
        body["workdir"] = workdir
    if user:
        body["user"] = user
    if stdin is not None:
        body["stdin"] = stdin
    if timeout:
        body["timeout_ms"] = int(timeout * 1000)
    if max_output is not None:
        body["max_output"] = int(max_output)
    if binary:
        body["encoding"] = "base64"
    return body


def _safe_extract(tar: tarfile.TarFile, dest: str) -> None:
    """Extract what the sandbox sent without letting a name or link leave dest (the guest is untrusted)."""
    root = os.path.realpath(dest)
    for m in tar.getmembers():
        target = os.path.realpath(os.path.join(root, m.name))
        if not (target == root or target.startswith(root + os.sep)):
            raise MsbError("bad_archive", f"the sandbox's archive names {m.name!r}, outside {dest}", 0)
        if m.islnk() or m.issym():
            link = os.path.realpath(os.path.join(os.path.dirname(target), m.linkname)) if m.issym() else \
                os.path.realpath(os.path.join(root, m.linkname))
            if not (link == root or link.startswith(root + os.sep)):
                raise MsbError("bad_archive", f"the sandbox's archive links {m.name!r} outside {dest}", 0)
        if m.isdev():
            raise MsbError("bad_archive", f"the sandbox's archive holds a device, {m.name!r}", 0)
        m.mode &= 0o777  # no setuid or setgid bits from the guest
    if hasattr(tarfile, "data_filter"):
        tar.extractall(root, filter="data")
    else:
        tar.extractall(root)


class Files:
    """Trees in and out of a sandbox, as tar (msb cp's rules)."""

    def __init__(self, sb: "Sandbox") -> None:
        self._sb = sb

    def upload(self, local_path: str, guest_dir: str) -> None:
        """Copy a local file or directory into guest_dir (made if missing; its parent must exist)."""
        with tempfile.TemporaryFile() as spool:
            with tarfile.open(fileobj=spool, mode="w") as t:
                t.add(local_path, arcname=os.path.basename(os.path.normpath(local_path)))
            spool.seek(0)
            self._sb._c.upload("PUT", self._sb._path("/archive"), {"path": guest_dir}, spool, "application/x-tar")

    def download(self, guest_path: str, local_dir: str) -> None:
        """Copy a guest file or directory into local_dir (which must exist), under its own name."""
        with tempfile.TemporaryFile() as spool:
            self._sb._c.download(self._sb._path("/archive"), {"path": guest_path}, spool)
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r") as t:
                _safe_extract(t, local_dir)


class Sandbox:
    """A named sandbox of msb's. Sandbox.create() makes one; use it as a context manager to remove it after."""

    def __init__(self, name: str, client: Optional[Client] = None, info: Optional[Dict[str, Any]] = None) -> None:
        self.name = name
        self._c = client or Client()
        self._info = info
        self.files = Files(self)

    # -- making and finding --

    @classmethod
    def create(cls, image: str = "busybox", *, name: Optional[str] = None, command: Optional[Sequence[str]] = None,
               env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None, user: Optional[str] = None,
               cpus: Optional[int] = None, memory: Optional[Size] = None, disk_size: Optional[Size] = None,
               volumes: Optional[List[Dict[str, Any]]] = None, net: Optional[str] = None,
               net_rules: Optional[List[str]] = None, ports: Optional[List[str]] = None,
               labels: Optional[Dict[str, str]] = None, max_duration: Optional[int] = None,
               idle_timeout: Optional[int] = None, start: bool = True, client: Optional[Client] = None,
               **extra: Any) -> "Sandbox":
        """Create (and start) a sandbox. The main command defaults to one that keeps it running.

        Every field of docs/api/openapi.yaml's CreateRequest may be given; a wrong one raises BadRequest naming it.
        """
        body: Dict[str, Any] = {"image": image, "start": start}
        body["command"] = list(command) if command is not None else ["sleep", "2147483647"]
        for k, v in (("name", name), ("env", env), ("workdir", workdir), ("user", user), ("cpus", cpus),
                     ("memory", memory), ("disk_size", disk_size), ("volumes", volumes), ("net", net),
                     ("net_rules", net_rules), ("ports", ports), ("labels", labels),
                     ("max_duration", max_duration), ("idle_timeout", idle_timeout)):
            if v is not None:
                body[k] = v
        body.update(extra)
        c = client or Client()
        info = c.request("POST", "/v1/sandboxes", body)
        return cls(info["name"], c, info)

    @classmethod
    def get(cls, name: str, client: Optional[Client] = None) -> "Sandbox":
        """An existing sandbox (NotFound if there is none)."""
        c = client or Client()
        return cls(name, c, c.request("GET", f"/v1/sandboxes/{name}"))

    @classmethod
    def list(cls, status: Optional[str] = None, labels: Optional[Dict[str, str]] = None,
             client: Optional[Client] = None) -> List[SandboxInfo]:
        """Every sandbox of the user (the CLI's too), filtered by status and labels."""
        c = client or Client()
        q: Dict[str, Any] = {"status": status, "label": [f"{k}={v}" for k, v in (labels or {}).items()]}
        return [SandboxInfo(**s) for s in c.request("GET", "/v1/sandboxes", query=q)["sandboxes"]]

    def _path(self, tail: str = "") -> str:
        return f"/v1/sandboxes/{self.name}{tail}"

    def info(self) -> SandboxInfo:
        self._info = self._c.request("GET", self._path())
        return SandboxInfo(**self._info)

    @property
    def status(self) -> str:
        return self.info().status

    # -- running things --

    def exec(self, command: Sequence[str], *, env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
             user: Optional[str] = None, stdin: Optional[str] = None, timeout: Optional[float] = None,
             max_output: Optional[int] = None) -> ExecResult:
        """Run a command to its end. A command that cannot be run gives exit_code 127 or 126, not an exception."""
        r = self._c.request("POST", self._path("/exec"),
                            _exec_body(command, env, workdir, user, stdin, timeout, max_output, False))
        return ExecResult(**r)

    def exec_stream(self, command: Sequence[str], *, env: Optional[Dict[str, str]] = None,
                    workdir: Optional[str] = None, user: Optional[str] = None, stdin: Optional[str] = None,
                    timeout: Optional[float] = None) -> Iterator[ExecEvent]:
        """Run a command, yielding its output as it comes and its exit last. Closing the iterator kills it."""
        for ev in self._c.stream("POST", self._path("/exec/stream"),
                                 _exec_body(command, env, workdir, user, stdin, timeout, None, False)):
            yield ExecEvent(**ev)

    def logs(self, *, follow: bool = False, tail: Optional[int] = None, since: Optional[str] = None,
             stream: Optional[str] = None) -> Iterator[LogRecord]:
        """The main process's output, stdout and stderr apart; follow waits for more until it stops."""
        q = {"follow": follow, "tail": tail, "since": since, "stream": stream}
        for rec in self._c.stream("GET", self._path("/logs"), query=q):
            yield LogRecord(**rec)

    def metrics(self) -> Metrics:
        m = self._c.request("GET", self._path("/metrics"))
        m.pop("name", None)
        return Metrics(**m)

    # -- its life --

    def start(self) -> None:
        self._info = self._c.request("POST", self._path("/start"))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the main process, then the VM stops after grace seconds."""
        self._info = self._c.request("POST", self._path("/stop"), {"grace_ms": int(grace * 1000)})

    def restart(self, grace: float = 10.0) -> None:
        self._info = self._c.request("POST", self._path("/restart"), {"grace_ms": int(grace * 1000)})

    def kill(self, signal: Union[int, str] = "KILL") -> None:
        self._info = self._c.request("POST", self._path("/kill"), {"signal": signal})

    def wait(self) -> int:
        """Block until it stops; the main process's exit code."""
        return int(self._c.request("POST", self._path("/wait"))["exit_code"])

    def remove(self, force: bool = True) -> None:
        """Remove it with its disk and logs (a running one is stopped at once with force)."""
        self._c.request("DELETE", self._path(), query={"force": force})

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.remove(force=True)
        except MsbError as e:
            if e.status != 404:
                raise

    def __repr__(self) -> str:
        return f"Sandbox({self.name!r})"
