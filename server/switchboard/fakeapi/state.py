"""The state one fake server shares between its event loop thread and its owner."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.fakeapi.cache import PromptCache
from switchboard.fakeapi.faults import FaultQueue
from switchboard.fakeapi.records import RequestLog


@dataclass
class FakeState:
    api_key: str | None
    cache: PromptCache
    log: RequestLog = field(default_factory=RequestLog)
    faults: FaultQueue = field(default_factory=FaultQueue)

    def reset(self) -> None:
        self.log.clear()
        self.faults.clear()
        self.cache.clear()
