"""`FakeAnthropic`: a fake Anthropic Messages API on a loopback port (tests, offline mode, benchmarks)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from switchboard.fakeapi.cache import DEFAULT_TTL, PromptCache
from switchboard.fakeapi.faults import Fault
from switchboard.fakeapi.handler import handle
from switchboard.fakeapi.http_server import FakeHTTPServer, loopback_address
from switchboard.fakeapi.records import RecordedRequest
from switchboard.fakeapi.state import FakeState


class FakeAnthropic:
    """A real HTTP server that the `anthropic` SDK can use unchanged (`base_url=api.base_url`).

    `api_key`: when set, only that key is accepted (as `x-api-key` or `Authorization: Bearer`); otherwise
    any non-empty key is. `cache_ttl` and `clock` drive the prompt-cache simulation (tests inject a clock).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        cache_ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = loopback_address(host)
        self.port = port
        self._state = FakeState(api_key=api_key, cache=PromptCache(ttl=cache_ttl, clock=clock))
        self._server: FakeHTTPServer | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Anthropic API is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def cache(self) -> PromptCache:
        return self._state.cache

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake Anthropic API is already running")
        server = FakeHTTPServer(self.host, self.port, functools.partial(handle, self._state))
        server.start()
        self.port = server.port
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving, cutting off streams in progress and stalled requests. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def received(self) -> list[RecordedRequest]:
        """The requests received so far (control requests excepted), in arrival order."""
        return self._state.log.snapshot()

    def add_fault(self, fault: Fault) -> None:
        self._state.faults.add(fault)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def pending_faults(self) -> list[Fault]:
        return self._state.faults.pending()

    def reset(self) -> None:
        """Forget faults, recorded requests and the prompt cache."""
        self._state.reset()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
