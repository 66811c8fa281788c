"""Structured access logs: one JSON line per request, without tokens, keys or bodies.

Only the time, method, path, status, durations, client address and what the handlers put in
`request.state` (account id, turn id, models, the turn's status and credits, how long its reservation and
Anthropic took) are written; headers and the query string never are, and a path segment that looks like a
token (a JWT, a refresh token, an Anthropic key, another opaque secret) is written as `[redacted]`, as is
the value of a `name=value` in a segment when it could be a token or a code.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .signin.codes import OPAQUE_BYTES, REFRESH_TOKEN_PREFIX

access_log = logging.getLogger("switchboard.gateway.access")
_STATE_FIELDS = (
    "account",
    "turn_id",
    "model",
    "routed_model",
    "turn_status",
    "credits",
    # a turn's way to its first token: the ledger's reservation, then Anthropic until its answer began
    "reserve_ms",
    "upstream_ms",
    # sign-in: the OAuth client, the grant, the OAuth error answered, the /device form's outcome
    "oauth_client",
    "grant",
    "oauth_error",
    "device_result",
)
REDACTED = "[redacted]"
# A path segment holding a secret someone put in a URL by mistake: a JWT (an access token: base64url of
# `{"` is `eyJ`, and three parts), a refresh token (`sbr_…`), or an unprefixed opaque secret (a device code, a
# browser session id: exactly `secrets.token_urlsafe(OPAQUE_BYTES)`'s 43 characters; a UUID has 36).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_OPAQUE_LENGTH = math.ceil(OPAQUE_BYTES * 4 / 3)  # base64url without padding
# That many base64url characters in a row, anywhere in a segment (`code=…`, `x…` as well as the bare secret).
_OPAQUE = re.compile(rf"[A-Za-z0-9_-]{{{_OPAQUE_LENGTH},}}")
# An Anthropic key (`sk-ant-api03-…`, `sk-ant-admin01-…`): the vendor's, or a user's pasted by mistake.
ANTHROPIC_KEY_PREFIX = "sk-ant-"
# `name=value` in a segment (`/x/code=…`, `;token=…`): the value is written `[redacted]` when it could be a
# token or a code (8 or more characters of a token's alphabet), the name stays.
_ASSIGNED = re.compile(r"([^=&;/]*=)([^&;/]*)")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+%-]{8,}")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0
        head_ms: float | None = None

        async def sending(message: Message) -> None:
            nonlocal status, head_ms
            if message["type"] == "http.response.start":
                status = message["status"]
                head_ms = elapsed_ms(started)  # a stream's head goes with its first events
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info(json.dumps(_entry(scope, status, started, head_ms), separators=(",", ":")))


def elapsed_ms(since: float, digits: int = 2) -> float:
    """Milliseconds since `since` (a `time.monotonic()`), to the hundredth unless said: a reservation takes
    about one."""
    return round((time.monotonic() - since) * 1000, digits)


def _entry(scope: Scope, status: int, started: float, head_ms: float | None) -> dict[str, Any]:
    client = scope.get("client")
    entry: dict[str, Any] = {
        "event": "access",
        "method": scope.get("method"),
        # never the query string: nothing secret belongs there, but be sure; nor a token in the path
        "path": redact_path(scope.get("path")),
        "status": status,
        "ms": elapsed_ms(started, digits=1),
        "head_ms": head_ms,
        "client": client[0] if client else None,
    }
    state: dict[str, Any] = scope.get("state") or {}
    entry.update({name: state[name] for name in _STATE_FIELDS if name in state})
    return entry


def redact_path(path: str | None) -> str | None:
    """`path` with each segment that looks like a secret replaced by `[redacted]`, and each `name=value`
    whose value could be a token or a code written `name=[redacted]`."""
    if not path or not (
        "eyJ" in path
        or REFRESH_TOKEN_PREFIX in path
        or ANTHROPIC_KEY_PREFIX in path
        or "=" in path
        or len(path) > _OPAQUE_LENGTH
    ):
        return path  # the usual paths: nothing to look at
    return "/".join(_redact_segment(segment) for segment in path.split("/"))


def _redact_segment(segment: str) -> str:
    if "=" in segment:
        segment = _ASSIGNED.sub(_redact_value, segment)
    return REDACTED if _secret_like(segment) else segment


def _redact_value(assigned: re.Match[str]) -> str:
    name, value = assigned.group(1), assigned.group(2)
    return name + REDACTED if _TOKEN_LIKE.fullmatch(value) or _secret_like(value) else assigned.group(0)


def _secret_like(segment: str) -> bool:
    return bool(
        REFRESH_TOKEN_PREFIX in segment
        or ANTHROPIC_KEY_PREFIX in segment
        or _JWT.search(segment)
        or _OPAQUE.search(segment)
    )


def timestamp(created: float) -> str:
    """ISO 8601 in UTC to the millisecond, e.g. 2026-12-07T16:10:00.123Z (a log record's `created`)."""
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


class JsonLines(logging.Formatter):
    """Log records as JSON lines, each beginning with its time (`ts`); an access record's message is already
    its JSON, which gets the `ts` put in front. A record logged with an
    exception carries its traceback (`error`), so the reference a 500 gave the client leads to its cause;
    `secrets` (the vendor key) are blanked from every line, an access line's path included."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        ts = timestamp(record.created)
        if record.name == access_log.name:
            message = record.getMessage()
            for secret in self._secrets:
                message = message.replace(secret, "[redacted]")
            return f'{{"ts":"{ts}",{message[1:]}' if message.startswith("{") else message
        entry: dict[str, Any] = {"ts": ts, "event": "log", "level": record.levelname, "logger": record.name}
        entry["message"] = record.getMessage()
        for name in ("account", "turn_id", "credits"):
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        line = json.dumps(entry, separators=(",", ":"))
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


def configure_logging(secrets: Sequence[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # A record per request: skip what each one would otherwise look up and JsonLines never writes (the
    # thread, the process, and the caller's file and line, found by walking the stack; the logging HOWTO's
    # "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # pyright: ignore[reportPrivateUsage]
    for noisy in ("httpx", "httpx2", "httpcore", "psycopg", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
