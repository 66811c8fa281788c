"""The log of requests the fake received, for tests to inspect what the client sent."""

from __future__ import annotations

import collections
import functools
import threading
from dataclasses import dataclass
from typing import Any

from switchboard.fakeapi.transport import parse_json


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names
    raw_body: bytes  # as sent (empty for a body refused unread)
    time: float  # wall-clock arrival time (time.time())

    @functools.cached_property
    def body(self) -> dict[str, Any] | None:
        """The parsed JSON object, or None if the body was not one (parsed when first asked for: most
        records are never read)."""
        parsed = parse_json(self.raw_body)
        return parsed if isinstance(parsed, dict) else None

    @property
    def model(self) -> str | None:
        """The body's `model`, as sent."""
        model = self.body.get("model") if self.body is not None else None
        return model if isinstance(model, str) else None

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "model": self.model,
            "time": self.time,
        }


# The most requests kept: a long-running `mock-api`, or the gateway benchmark's 100,000 turns, must not grow
# the fake without bound (nor give its collector an ever larger heap to walk).
MAX_RECORDS = 10_000


class RequestLog:
    """The last `limit` requests, oldest first."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=limit)
        self._lock = threading.Lock()

    def append(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
