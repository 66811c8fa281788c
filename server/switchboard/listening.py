"""A listening TCP socket, bound the one way both servers here bind theirs: the gateway's replicas
(`gateway.cli serve`, which hands it to uvicorn) and the fake Anthropic API (`fakeapi.http_server`)."""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket bound to `host`:`port` (IPv6 for an address with a colon; port 0: any free one) with
    SO_REUSEADDR, as uvicorn and asyncio bind theirs, and listening with `backlog`. Raises the OSError
    (the socket closed) when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
