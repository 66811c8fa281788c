"""Server-sent events from the upstream byte stream, one whole event at a time, as they arrive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


class MalformedEvent(ValueError):
    """An event whose data is not a JSON object."""


@dataclass(frozen=True)
class Event:
    name: str
    data: str

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data)
        except ValueError:
            raise MalformedEvent(f"the {self.name!r} event's data is not JSON") from None
        if not isinstance(value, dict):
            raise MalformedEvent(f"the {self.name!r} event's data is not an object")
        return value

    def encode(self) -> bytes:
        return encode(self.name, self.data)


def encode(name: str, data: str) -> bytes:
    """One event on the wire, always with an `event:` line (anthropic 2.x needs it)."""
    return f"event: {name}\ndata: {data}\n\n".encode()


def encode_json(name: str, data: dict[str, Any]) -> bytes:
    return encode(name, json.dumps(data, separators=(",", ":"), ensure_ascii=False))


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Parse SSE from `chunks`; an event is yielded as soon as its blank line arrives."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            event = _parse(block.decode("utf-8", errors="replace"))
            if event is not None:
                yield event


def _parse(block: str) -> Event | None:
    name, data = "message", []
    for line in block.split("\n"):
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if not data:
        return None
    return Event(name, "\n".join(data))
