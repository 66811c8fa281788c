"""A streamed turn: forward upstream events as they arrive, meter them, settle before `message_stop`.

The client's disconnect is watched for the whole stream, so the upstream stream is closed the moment the
client goes, not at the next event. Whatever ends the stream, the turn is settled exactly once:
`complete` when `message_delta` came, `cut` when output had begun (charged for the tokens that reached the
gateway), `failed` when none had (free). A client that leaves after `message_start` pays for the input it
reported even before any output: Anthropic has billed the prompt (and written its cache), and a free hang-up
would make prompt-cache writes free.

A complete turn is settled at `message_stop` with the usage of the last `message_delta` (each reports the
turn's counts so far, so a later one can say more than an earlier one). From the first `message_delta` on,
the events are held back until that settlement commits, then passed on in one write, each `message_delta`
carrying the charge: the client gets neither the usage nor `message_stop` before the charge is committed.
A stream that ends or breaks after a `message_delta` but before `message_stop` is settled `complete` the
same way, its held events passed on ahead of the `error` event that ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .charge import charge_info, route_headers
from .db import LedgerUnavailable
from .errors import error_body
from .ledger import Outcome, Reservation, Settlement
from .metering import StreamMeter
from .service import Gateway
from .sse import Event, MalformedEvent, encode_json, event_batches
from .upstream import UpstreamAnswer, UpstreamFailure

log = logging.getLogger("switchboard.gateway")
# What a client is told when its turn's charge cannot be committed yet: it is committed later (by this
# replica's retries; if the replica is stopped first, by a sweep at the turn's last checkpoint), so a turn
# that streamed whole must not be asked again (a new turn id would pay for it twice).
_UNRECORDED = {
    "complete": "This answer is complete, but the gateway could not record its charge yet: it will once its "
    "ledger is back. There is no need to ask again.",
    "cut": "The answer stopped early, and the gateway could not record its charge yet: it will, for what "
    "streamed, once its ledger is back.",
    "failed": "The gateway could not record this turn yet; it costs nothing. Ask again shortly.",
}
# The events that end a turn: settled before they are passed on (`message_delta` is held back until then).
_SETTLING_EVENTS = frozenset({"message_delta", "message_stop", "error"})
# The events whose JSON the relay reads (for their usage, or to add the charge); the rest pass through as
# they came, most of all the many `content_block_delta`s, metered from their text only if the turn is cut.
_READ_EVENTS = _SETTLING_EVENTS | {"message_start"}


class ClientGone(Exception):
    pass


class Deliver(Protocol):
    """Pass bytes of the answer on to the client (`more=False`: the last)."""

    async def __call__(self, body: bytes, *, more: bool = True) -> None: ...


class TurnStream(Response):
    """An ASGI response relaying one upstream stream to one client."""

    def __init__(
        self,
        gateway: Gateway,
        reservation: Reservation,
        route_reason: str,
        upstream: UpstreamAnswer,
        meter: StreamMeter | None = None,
    ) -> None:
        headers = {**route_headers(reservation, route_reason), "cache-control": "no-cache"}
        # As StreamingResponse does: no body, hence no Content-Length; the events follow as they come.
        self.status_code, self.media_type, self.background = 200, "text/event-stream", None
        self.init_headers(headers)
        self.gateway, self.reservation, self.route_reason = gateway, reservation, route_reason
        self.upstream = upstream
        self.meter = meter or StreamMeter()
        self.settlement: Settlement | None = None
        self.cut_reason = "the client disconnected"
        self.client_left = False
        self._settling: Outcome | None = None  # the outcome being settled (retried if PostgreSQL refuses it)
        self.handed_off = False  # settling was left to `Gateway.settle_later`
        self.relayed_whole = False  # `message_stop` was passed on
        # Once a `message_delta` came, the events from it on (as they came), held back until the settlement
        # commits; and where each `message_delta` is among them, with its data, to carry the charge.
        self._held: list[bytes] | None = None
        self._held_deltas: list[tuple[int, dict[str, Any]]] = []
        self.ended = False  # the stream's last event (`message_stop` or an `error`) was passed on
        self._log_state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._log_state = scope.setdefault("state", {})
        self.gateway.meter(self.reservation, self.meter)  # the replica's heartbeat checkpoints it
        started = False

        async def deliver(body: bytes, *, more: bool = True) -> None:
            # The head goes out right before the first events rather than on its own ahead of them, so the
            # client does not wake for the head alone (it usually reads both at once).
            nonlocal started
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                started = True
            await send({"type": "http.response.body", "body": body, "more_body": more})

        # The relay runs in this task, so the first events go out without waiting for a new task's turn
        # on a busy event loop; the client leaving cancels it wherever it waits.
        this = asyncio.current_task()
        assert this is not None
        relaying = True
        left = False
        broke = False

        def stop_relay(watched: asyncio.Task[None]) -> None:
            nonlocal left
            if not watched.cancelled() and (error := watched.exception()) is not None:
                log.error("watching turn %s's client failed: %r", self.reservation.key.turn_id, error)
            if relaying:
                left = True
                this.cancel()

        watch = asyncio.ensure_future(client_disconnected(receive))
        watch.add_done_callback(stop_relay)
        try:
            await self._pump(deliver)
        except asyncio.CancelledError:
            if not left or this.uncancel() > 0:
                raise  # cancelled from outside (the replica stopping): settled below all the same
            self.client_left = True
        except Exception:
            log.exception("the relay of turn %s failed", self.reservation.key.turn_id)
            broke = True
        finally:
            relaying = False
            watch.cancel()
            self.gateway.upstream.finish(self.upstream, whole=self.relayed_whole)
            if self.settlement is None and not self.handed_off:
                await self._settle_or_leave()
        if not left:
            with contextlib.suppress(OSError):
                if broke and not self.ended:  # never a stream that just stops: the SDK would take it whole
                    held = self._release(self._charge()) if self.settlement is not None else b""
                    await deliver(held + encode_json("error", self._broken_body()))
                await deliver(b"", more=False)

    def _broken_body(self) -> dict[str, Any]:
        body = error_body("api_error", "The gateway failed while relaying this answer; ask again.")
        if self.settlement is not None:
            body["switchboard"] = self._charge()
        return body

    def _charge(self) -> dict[str, Any]:
        assert self.settlement is not None
        return charge_info(self.reservation, self.route_reason, self.settlement)

    def _release(self, charge: dict[str, Any]) -> bytes:
        """The events held back since the first `message_delta`, each `message_delta` now carrying `charge`
        (call once the settlement has committed); nothing when none came."""
        if self._held is None:
            return b""
        held = self._held
        for index, data in self._held_deltas:
            held[index] = encode_json("message_delta", {**data, "switchboard": charge})
        self._held, self._held_deltas = None, []
        return b"".join(held)

    async def _pump(self, deliver: Deliver) -> None:
        async def forward(chunk: bytes) -> None:
            try:
                await deliver(chunk)
            except OSError:
                raise ClientGone() from None

        try:
            async for batch in event_batches(self.gateway.upstream.chunks(self.upstream)):
                # Events passed on as they came, in one write per upstream read; only the turn's last events
                # wait for (and carry) its settlement: from the first `message_delta` on, `passing` is the
                # held list, so the deltas' way costs nothing more.
                passing: list[bytes] = [] if self._held is None else self._held
                for event in batch:
                    data = self._observe(event)
                    if event.name not in _SETTLING_EVENTS:
                        if self._held is not None and event.name == "ping":
                            # Held back is only what carries or follows the charge: a keep-alive goes out,
                            # so a client or proxy waiting for `message_stop` does not time out meanwhile.
                            await forward(event.encode())
                            continue
                        passing.append(event.encode())
                        continue
                    if event.name == "message_delta":
                        if self._held is None:
                            if passing:
                                await forward(b"".join(passing))
                            passing = self._held = []
                        self._held_deltas.append((len(passing), data))
                        passing.append(event.encode())
                        continue
                    if passing and self._held is None:
                        await forward(b"".join(passing))
                        passing = []
                    if await self._end(event, data, forward):
                        return
                if passing and self._held is None:
                    await forward(b"".join(passing))
            await self._fail(deliver, "the upstream stream ended before message_stop")
        except (UpstreamFailure, MalformedEvent) as error:
            await self._fail(deliver, f"the upstream stream broke ({type(error).__name__})")
        except ClientGone:
            self.cut_reason = "the client disconnected"
            self.client_left = True
        except LedgerUnavailable as error:
            log.error("could not settle a turn (%s): retrying until the ledger answers", error)
            outcome = self._settling or self._unfinished("the ledger was unavailable")
            self._settle_later(outcome)
            body = error_body("api_error", _UNRECORDED[outcome.status])
            with contextlib.suppress(OSError):
                await deliver(encode_json("error", body))
            self.ended = True

    async def _fail(self, deliver: Deliver, reason: str) -> None:
        """End a stream upstream broke off: settled for what arrived, and the client told with an `error`
        event (a stream that just stops would read as a whole answer to the SDK)."""
        message = "The answer was cut off upstream; it is charged only for what arrived."
        body = error_body("api_error", message)
        held = b""
        try:
            body["switchboard"] = charge = await self._settle_unfinished(reason)
            held = self._release(charge)
        except LedgerUnavailable as error:
            log.error("could not settle a turn (%s): retrying until the ledger answers", error)
            self._settle_later(self._settling or self._unfinished(reason))
        with contextlib.suppress(OSError):
            await deliver(held + encode_json("error", body))
        self.ended = True

    async def _settle(self, outcome: Outcome) -> dict[str, Any]:
        self._settling = outcome
        self.settlement = await self.gateway.settle(self.reservation, outcome)
        self._log_state["turn_status"] = self.settlement.status
        self._log_state["credits"] = self.settlement.credits_h / 100
        return charge_info(self.reservation, self.route_reason, self.settlement)

    async def _settle_or_leave(self) -> None:
        # A settlement the client's leaving cut short is made again as it was (the ledger settles a turn
        # once, so a second call only reads the first's result); otherwise the turn ends unfinished.
        outcome = self._settling or self._unfinished(self.cut_reason)
        try:
            await self._settle(outcome)
        except LedgerUnavailable as error:
            log.error("could not settle a turn (%s): retrying until the ledger answers", error)
            self._settle_later(outcome)

    def _settle_later(self, outcome: Outcome) -> None:
        self.handed_off = True
        self.gateway.settle_later(self.reservation, outcome)

    async def _settle_unfinished(self, reason: str) -> dict[str, Any]:
        return await self._settle(self._unfinished(reason))

    def _observe(self, event: Event) -> dict[str, Any]:
        """Meter `event`; its JSON when the relay reads it (`_READ_EVENTS`), else nothing is parsed but a
        text delta's text, kept for a cut turn's count, and a block's start and stop, which time thinking."""
        if event.name not in _READ_EVENTS:
            if event.name == "content_block_delta":
                self.meter.delta(event.object_data())
            elif event.name == "content_block_start":
                self.meter.block_start(event.data)
            elif event.name == "content_block_stop":
                self.meter.block_stop()
            return {}
        data = event.json()
        self.meter.observe(event.name, data)
        return data

    async def _end(
        self, event: Event, data: dict[str, Any], forward: Callable[[bytes], Awaitable[None]]
    ) -> bool:
        """Settle the turn at `message_stop` or an `error` event and pass it on, after the events held back
        since `message_delta`, with the charge where the client reads it; True: nothing more is relayed."""
        if event.name == "message_stop":
            # The usage of the last `message_delta` (the meter keeps the latest counts), or, when none came,
            # the meter's count.
            charge = await self._settle(Outcome("complete", self.meter.usage()))
            await forward(self._release(charge) + event.encode())
            self.relayed_whole = self.ended = True
            return True
        data["switchboard"] = charge = await self._settle_unfinished("the upstream sent an error event")
        await forward(self._release(charge) + self.gateway.upstream.redact(encode_json("error", data)))
        self.ended = True
        return True

    def _unfinished(self, reason: str) -> Outcome:
        if self.meter.final:
            # `message_delta` came: the answer is whole and its usage exact; only `message_stop` is missing.
            return Outcome("complete", self.meter.usage())
        # A turn that failed before output is free and may be asked again; one the client left once the
        # prompt was billed upstream is not (it is not retried: the client is gone).
        consumed = self.meter.output_seen or (self.client_left and self.meter.started)
        return Outcome("cut" if consumed else "failed", self.meter.usage(), reason)


async def client_disconnected(receive: Receive) -> None:
    """Returns once the client has gone (its body read already: nothing else can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass
