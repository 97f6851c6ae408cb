"""Errors from msb serve: each carries the server's stable code, its message and the HTTP status."""
from __future__ import annotations

import json
from typing import Optional


class MsbError(Exception):
    """An error msb serve answered (or a connection that failed: status 0).

    code: the stable code (docs/api.md: "not_found", "conflict", "bad_request", ...);
    message: what the CLI would print; field: the request field at fault, if any.
    """

    def __init__(self, code: str, message: str, status: int, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


class BadRequest(MsbError):
    """400: a field is wrong; .field names it."""


class Unauthorized(MsbError):
    """401: no valid token (TCP), or another user's socket."""


class NotFound(MsbError):
    """404: no such sandbox, image or guest path."""


class Conflict(MsbError):
    """409: a name taken, a sandbox not running, or busy."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 404: NotFound, 409: Conflict}


def error_from(status: int, raw: bytes) -> MsbError:
    try:
        e = json.loads(raw)["error"]
        code, msg, field = e["code"], e["message"], e.get("field")
    except (ValueError, KeyError, TypeError):
        code, msg, field = "internal", raw.decode("utf-8", "replace")[:500] or f"HTTP {status}", None
    return _BY_STATUS.get(status, MsbError)(code, msg, status, field)
