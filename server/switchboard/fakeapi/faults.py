"""Fault injection: what can go wrong, which requests it hits, and how a request's faults combine."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from switchboard.fakeapi.errors import DEFAULT_MESSAGES, ApiError
from switchboard.fakeapi.model_ids import resolve_model

FaultKind = Literal["status", "error_event", "drop", "stall", "slow", "malformed_sse", "truncated_json"]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
MESSAGES_PATH = "/v1/messages"
# Where a mid-stream fault strikes when `after_deltas` is None: after a little text, as real failures do.
DEFAULT_AFTER_DELTAS = 2


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    `status`: answer `status` with an Anthropic error body (429 also gets `retry-after: retry_after`).
    `error_event`: an SSE `error` event (overloaded_error) after `after_deltas` deltas, then the stream ends.
    `drop`: close the connection mid-stream after `after_deltas` deltas, without the terminating chunk.
    `stall`: send nothing for `seconds`, before the headers if `after_deltas` is None, else mid-stream.
    `slow`: sleep `seconds` before each delta.
    `malformed_sse`: an event whose data is not JSON, after `after_deltas` deltas.
    `truncated_json`: a non-streaming body cut short (Content-Length matches the cut body).

    Deltas are thinking and text deltas; mid-stream faults default to striking after 2 of them. Faults only
    hit authenticated, valid requests (so a malformed request never uses one up). On non-streaming requests
    the stream faults degrade to their nearest equivalent: `error_event` is a 529, `drop` closes the
    connection before any response, `malformed_sse` truncates the JSON, `slow` and `stall` delay it.
    """

    kind: FaultKind
    status: int = 529
    retry_after: float = 0.0
    after_deltas: int | None = None
    seconds: float = 0.0
    count: int | None = 1  # matching requests it applies to; None = forever
    model: str | None = None  # only requests for this Anthropic model id (aliases resolved)
    path: str = MESSAGES_PATH
    message: str | None = None  # error message override
    should_retry: bool | None = None  # sends `x-should-retry` when set

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be a 4xx or 5xx code, not {self.status}")
        if self.count is not None and self.count < 1:
            raise ValueError("fault count must be at least 1 (or None for forever)")
        if self.seconds < 0 or self.retry_after < 0 or (self.after_deltas or 0) < 0:
            raise ValueError("fault seconds, retry_after and after_deltas must not be negative")

    @property
    def strikes_at(self) -> int:
        return DEFAULT_AFTER_DELTAS if self.after_deltas is None else self.after_deltas

    def matches(self, path: str, model: str | None) -> bool:
        if path != self.path:
            return False
        return self.model is None or (model is not None and _same_model(self.model, model))

    def to_error(self) -> ApiError:
        """The error response of a `status` fault."""
        headers: dict[str, str] = {}
        if self.status == 429 or self.retry_after > 0:
            headers["retry-after"] = f"{self.retry_after:g}"
            headers["retry-after-ms"] = str(round(self.retry_after * 1000))
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        message = self.message or DEFAULT_MESSAGES.get(self.status, f"Simulated HTTP {self.status} fault")
        return ApiError(self.status, message, headers=headers)

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """A fault from its JSON form (the dataclass fields), as the control API receives it."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(map(str, unknown))}")
        for name, value in data.items():
            _check_field_type(name, value)
        return cls(**data)


@dataclass(frozen=True)
class Plan:
    """Everything injected into one request, from the fault queue and the prompt's directives."""

    status: Fault | None = None
    stall_before: float = 0.0
    delta_delay: float = 0.0
    interruption: Fault | None = None  # error_event, drop, malformed_sse, truncated_json or mid-stream stall
    words: int | None = None

    @classmethod
    def of(cls, faults: Iterable[Fault], words: int | None = None) -> Plan:
        plan = cls(words=words)
        for fault in faults:
            plan = plan._with(fault)
        return plan

    def _with(self, fault: Fault) -> Plan:
        if fault.kind == "status":
            return self if self.status else dataclasses.replace(self, status=fault)
        if fault.kind == "stall" and fault.after_deltas is None:
            return dataclasses.replace(self, stall_before=self.stall_before + fault.seconds)
        if fault.kind == "slow":
            return dataclasses.replace(self, delta_delay=fault.seconds)
        return self if self.interruption else dataclasses.replace(self, interruption=fault)


class FaultQueue:
    """Pending faults in FIFO order; each request takes the first one that matches it."""

    def __init__(self) -> None:
        self._entries: list[tuple[Fault, int | None]] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._entries.append((fault, fault.count))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [fault for fault, _ in self._entries]

    def take(self, path: str, model: str | None) -> Fault | None:
        with self._lock:
            for index, (fault, remaining) in enumerate(self._entries):
                if fault.matches(path, model):
                    self._consume(index, remaining)
                    return fault
        return None

    def _consume(self, index: int, remaining: int | None) -> None:
        if remaining is None:
            return
        if remaining <= 1:
            del self._entries[index]
        else:
            self._entries[index] = (self._entries[index][0], remaining - 1)


_FIELD_TYPES: Mapping[str, tuple[type, ...]] = {
    "kind": (str,),
    "status": (int,),
    "retry_after": (int, float),
    "after_deltas": (int, type(None)),
    "seconds": (int, float),
    "count": (int, type(None)),
    "model": (str, type(None)),
    "path": (str,),
    "message": (str, type(None)),
    "should_retry": (bool, type(None)),
}


def _check_field_type(name: str, value: object) -> None:
    expected = _FIELD_TYPES[name]
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise ValueError(f"fault field {name!r} has the wrong type: {value!r}")


def _same_model(a: str, b: str) -> bool:
    return (resolve_model(a) or a) == (resolve_model(b) or b)
