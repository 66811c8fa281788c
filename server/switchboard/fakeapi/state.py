"""The state one fake server shares between its request threads and its owner."""

from __future__ import annotations

import socket
import threading
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
    stopping: threading.Event = field(default_factory=threading.Event)
    connections: set[socket.socket] = field(default_factory=set[socket.socket])
    connections_lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self, seconds: float) -> bool:
        """Sleep `seconds`; False if the server began stopping meanwhile (the caller should give up)."""
        return not self.stopping.wait(seconds) if seconds > 0 else not self.stopping.is_set()

    def reset(self) -> None:
        self.log.clear()
        self.faults.clear()
        self.cache.clear()
