"""The asyncio twin of Sandbox: every call runs the sync client in a worker thread, streams included."""
from __future__ import annotations

import asyncio
import functools
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Sequence

from ._client import Client
from .sandbox import ExecEvent, ExecResult, LogRecord, Metrics, Sandbox, SandboxInfo

_END = object()


async def _run(fn, *args, **kw):
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))


async def _aiter(make: "functools.partial[Iterator[Any]]") -> AsyncIterator[Any]:
    it = await _run(make)
    try:
        while True:
            item = await _run(next, it, _END)
            if item is _END:
                return
            yield item
    finally:
        await _run(it.close)


class AsyncFiles:
    def __init__(self, sb: Sandbox) -> None:
        self._f = sb.files

    async def upload(self, local_path: str, guest_dir: str) -> None:
        await _run(self._f.upload, local_path, guest_dir)

    async def download(self, guest_path: str, local_dir: str) -> None:
        await _run(self._f.download, guest_path, local_dir)


class AsyncSandbox:
    """Sandbox for asyncio: `async with await AsyncSandbox.create(...) as sb: await sb.exec([...])`."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb
        self.name = sb.name
        self.files = AsyncFiles(sb)

    @classmethod
    async def create(cls, image: str = "busybox", **kw: Any) -> "AsyncSandbox":
        return cls(await _run(Sandbox.create, image, **kw))

    @classmethod
    async def get(cls, name: str, client: Optional[Client] = None) -> "AsyncSandbox":
        return cls(await _run(Sandbox.get, name, client))

    @classmethod
    async def list(cls, status: Optional[str] = None, labels: Optional[Dict[str, str]] = None,
                   client: Optional[Client] = None) -> List[SandboxInfo]:
        return await _run(Sandbox.list, status, labels, client)

    async def info(self) -> SandboxInfo:
        return await _run(self._sb.info)

    async def exec(self, command: Sequence[str], **kw: Any) -> ExecResult:
        return await _run(self._sb.exec, command, **kw)

    def exec_stream(self, command: Sequence[str], **kw: Any) -> AsyncIterator[ExecEvent]:
        return _aiter(functools.partial(self._sb.exec_stream, command, **kw))

    def logs(self, **kw: Any) -> AsyncIterator[LogRecord]:
        return _aiter(functools.partial(self._sb.logs, **kw))

    async def metrics(self) -> Metrics:
        return await _run(self._sb.metrics)

    async def start(self) -> None:
        await _run(self._sb.start)

    async def stop(self, grace: float = 10.0) -> None:
        await _run(self._sb.stop, grace)

    async def restart(self, grace: float = 10.0) -> None:
        await _run(self._sb.restart, grace)

    async def kill(self, signal: Any = "KILL") -> None:
        await _run(self._sb.kill, signal)

    async def wait(self) -> int:
        return await _run(self._sb.wait)

    async def remove(self, force: bool = True) -> None:
        await _run(self._sb.remove, force)

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await _run(self._sb.__exit__, *exc)
