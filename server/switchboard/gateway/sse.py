"""Server-sent events from the upstream byte stream, whole events as they arrive.

Each event keeps its bytes as they came, so the relay passes on what it does not change without
re-encoding it, and all the events of one upstream read in one write."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

# Anthropic's events are small (a delta is a few words), but a tool's whole result comes as one event, and a
# fetched document in it can weigh megabytes. An upstream event still unfinished past this is broken, and
# would otherwise be buffered for ever.
MAX_EVENT_BYTES = 32 << 20


class MalformedEvent(ValueError):
    """An event whose data is not a JSON object."""


class OversizedEvent(MalformedEvent):
    """An event that grew past `MAX_EVENT_BYTES` without ending."""


class Event(NamedTuple):  # a tuple: made for every event relayed, and cheaper to make than a dataclass
    name: str
    data: str
    raw: bytes  # the event on the wire (line ends normalised to \n), its blank line included

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data)
        except ValueError:
            raise MalformedEvent(f"the {self.name!r} event's data is not JSON") from None
        if not isinstance(value, dict):
            raise MalformedEvent(f"the {self.name!r} event's data is not an object")
        return value

    def object_data(self) -> str:
        """The data, checked only to look like a JSON object (cheap: for events passed on unread)."""
        if not self.data.startswith("{"):
            raise MalformedEvent(f"the {self.name!r} event's data is not an object")
        return self.data

    def encode(self) -> bytes:
        """The event to pass on: as it came, unless it lacked the `event:` line anthropic 2.x needs."""
        return self.raw if self.raw.startswith(b"event:") else encode(self.name, self.data)


def encode(name: str, data: str) -> bytes:
    """One event on the wire, always with an `event:` line (anthropic 2.x needs it)."""
    return f"event: {name}\ndata: {data}\n\n".encode()


def encode_json(name: str, data: dict[str, Any]) -> bytes:
    return encode(name, json.dumps(data, separators=(",", ":"), ensure_ascii=False))


async def event_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[Event]]:
    """Parse SSE from `chunks`: the events each chunk completes, as soon as it arrives (never empty).
    Raises OversizedEvent when the unfinished event grows past `MAX_EVENT_BYTES`.

    The unfinished event is kept in pieces and each chunk is scanned once, so a large event costs its size,
    not its size times its number of reads."""
    pieces: list[bytes] = []  # the unfinished event so far, line ends normalised, no empty piece
    size = 0
    async for chunk in chunks:
        if pieces and pieces[-1].endswith(b"\r"):  # a CRLF pair cut between two reads
            chunk = b"\r" + chunk
            pieces[-1] = pieces[-1][:-1]
            if not pieces[-1]:
                pieces.pop()
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        if b"\n\n" in chunk or (pieces and pieces[-1].endswith(b"\n") and chunk.startswith(b"\n")):
            data = b"".join((*pieces, chunk)) if pieces else chunk
            *blocks, rest = data.split(b"\n\n")
            pieces, size = ([rest], len(rest)) if rest else ([], 0)
            batch = [event for block in blocks if (event := _parse(block)) is not None]
            if batch:
                yield batch
        elif chunk:
            pieces.append(chunk)
            size += len(chunk)
        if size > MAX_EVENT_BYTES:
            raise OversizedEvent(f"an upstream event grew past {MAX_EVENT_BYTES} bytes without ending")


def _parse(block: bytes) -> Event | None:
    # Anthropic's shape, nearly every event: an `event:` line, then one `data:` line (no other line).
    if block.startswith(b"event: "):
        end = block.find(b"\n")
        if end > 0 and block.startswith(b"data: ", end + 1) and block.find(b"\n", end + 1) == -1:
            name = block[7:end].decode("utf-8", errors="replace")
            return Event(name, block[end + 7 :].decode("utf-8", errors="replace"), block + b"\n\n")
    return _parse_lines(block)


def _parse_lines(block: bytes) -> Event | None:
    name, data = "message", []
    for line in block.decode("utf-8", errors="replace").split("\n"):
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
    return Event(name, "\n".join(data), block + b"\n\n")
