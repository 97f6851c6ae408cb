"""msb: microVM sandboxes for untrusted code, driven through msb serve (docs/api.md).

    from msb import Sandbox
    with Sandbox.create(image="busybox", memory="512M") as sb:
        print(sb.exec(["echo", "hi"]).stdout)
"""
from ._client import Client, default_socket
from .aio import AsyncSandbox
from .errors import BadRequest, Conflict, MsbError, NotFound, Unauthorized
from .sandbox import ExecEvent, ExecResult, LogRecord, Metrics, Sandbox, SandboxInfo

__all__ = ["AsyncSandbox", "BadRequest", "Client", "Conflict", "ExecEvent", "ExecResult", "LogRecord", "Metrics",
           "MsbError", "NotFound", "Sandbox", "SandboxInfo", "Unauthorized", "default_socket"]
__version__ = "0.1.0"
