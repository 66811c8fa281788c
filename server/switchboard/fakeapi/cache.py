"""Prompt-cache simulation: which prefix of a request is read from cache, written, or billed as input."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchboard.fakeapi.model_ids import min_cacheable_tokens
from switchboard.fakeapi.tokens import Segment

DEFAULT_TTL = 300.0
LONG_TTL = 3600.0


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class _Boundary:
    index: int  # the prefix is segments[: index + 1]
    key: str
    tokens: int  # tokens of the prefix
    ttl: float | None  # set when this segment is an effective cache breakpoint


class PromptCache:
    """Entries are keyed by model + hash of the canonical prefix and expire `ttl` seconds after their last
    write or read (`clock` is injectable so tests can expire them without waiting)."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        long_ttl: float = LONG_TTL,
    ) -> None:
        self.ttl = ttl
        self.long_ttl = long_ttl
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self.clock())
            return len(self._expiry)

    def apply(self, model: str, segments: Sequence[Segment]) -> CacheUsage:
        """Read the longest cached prefix, write the request's breakpoints, and split its input tokens."""
        total = sum(segment.tokens for segment in segments)
        if all(segment.breakpoint is None for segment in segments):
            return CacheUsage(input_tokens=total)  # nothing to read or write: skip hashing the prefix
        boundaries = self._boundaries(model, segments)
        breakpoints = [b for b in boundaries if b.ttl is not None]
        if not breakpoints:
            return CacheUsage(input_tokens=total)
        last = breakpoints[-1]
        with self._lock:
            now = self.clock()
            self._purge(now)
            read = self._read(boundaries[: last.index + 1], now)
            for boundary in breakpoints:
                self._write(boundary, now)
        created = last.tokens - read
        return CacheUsage(
            input_tokens=total - last.tokens,
            cache_creation_input_tokens=created,
            cache_read_input_tokens=read,
        )

    def _boundaries(self, model: str, segments: Sequence[Segment]) -> list[_Boundary]:
        minimum = min_cacheable_tokens(model)
        running = hashlib.sha256(model.encode())
        boundaries: list[_Boundary] = []
        tokens = 0
        for index, segment in enumerate(segments):
            running.update(segment.canonical.encode() + b"\x1e")
            tokens += segment.tokens
            # Like the real API, a breakpoint marking a prefix shorter than the model's minimum is ignored.
            effective = segment.breakpoint is not None and tokens >= minimum
            ttl = (self.long_ttl if segment.breakpoint == "1h" else self.ttl) if effective else None
            boundaries.append(_Boundary(index, f"{model}:{running.hexdigest()}", tokens, ttl))
        return boundaries

    def _read(self, candidates: Sequence[_Boundary], now: float) -> int:
        for boundary in reversed(candidates):
            expiry = self._expiry.get(boundary.key)
            if expiry is not None:
                self._expiry[boundary.key] = max(expiry, now + (boundary.ttl or self.ttl))
                return boundary.tokens
        return 0

    def _write(self, boundary: _Boundary, now: float) -> None:
        ttl = boundary.ttl or self.ttl
        self._expiry[boundary.key] = max(self._expiry.get(boundary.key, now), now + ttl)

    def _purge(self, now: float) -> None:
        for key in [key for key, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[key]
