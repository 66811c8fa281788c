"""The threading HTTP server under a fake: loopback only, and able to stop mid-stream."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from switchboard.fakeapi.state import FakeState

log = logging.getLogger(__name__)


def loopback_address(host: str) -> str:
    """`host` as a loopback IP address; ValueError for anything that is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the fake Anthropic API only binds loopback addresses, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the fake Anthropic API only binds loopback addresses, not {host!r}")
    return str(address)


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 would drop SYNs (1 s retransmits).
    request_queue_size = 128
    # Do not join request threads on close: a stalled stream must not hold up stop().
    block_on_close = False

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], state: FakeState) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.state = state
        super().__init__((host, port), handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.state.connections_lock:
            self.state.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.state.connections_lock:
                self.state.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request are routine here (timeouts, drops); anything else is a bug.
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.ERROR
        log.log(level, "fake Anthropic API: error while serving %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.state.connections_lock:
            connections = list(self.state.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
