"""`POST /v1/messages`: authenticate, choose the model, reserve, forward, meter, settle."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from switchboard.routing import is_busy

from .accesslog import elapsed_ms
from .accounts import Account
from .body import INLINE_BYTES, client_closed, read_body
from .charge import BUSY_MODELS_HEADER, answer_with_charge, charge_info, route_headers
from .db import LedgerUnavailable
from .errors import GatewayRefusal, error_response
from .estimate import estimate_input_tokens
from .ledger import Outcome, Reservation
from .metering import StreamMeter, usage_of_message
from .relay import TurnStream, client_disconnected
from .service import Caller, Choice, Gateway
from .turn_request import TurnRequest
from .upstream import UpstreamAnswer, UpstreamFailure, relay_error, unreachable

log = logging.getLogger("switchboard.gateway")
LEDGER_AWAY = "The gateway could not record this turn's charge, so it kept the answer back; retry shortly."


async def create_message(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        account = gateway.caller(request)  # checked against the database by the reservation
        raw = await read_body(request, gateway.settings.max_body_bytes)
        if len(raw) <= INLINE_BYTES:
            turn = await gateway.bodies.parse(request.headers, raw, gateway.settings)
        elif (turn := await _parse_unless_client_leaves(request, gateway, raw)) is None:
            # It waited its turn for the parsing thread, perhaps seconds: a client gone meanwhile is not
            # answered, nor its prompt sent to Anthropic (which would bill it).
            raise client_closed()
        request.state.turn_id, request.state.model = turn.turn_id, turn.model.id
        attempt = await _reserve(request, gateway, account, turn, await gateway.choose(account, turn))
    except GatewayRefusal as refusal:
        return refusal.response()
    try:
        return await _forward(request, gateway, account, turn, attempt)
    except BaseException:
        # Whatever went wrong before the answer began (a bug, a cancelled request) costs nothing.
        if not attempt.released:
            failed = Outcome("failed", usage_of_message({}), "the gateway failed")
            await gateway.settle(attempt.reservation, failed)
        raise


@dataclass
class _Attempt:
    """The model asked upstream for a turn, the body sent it, and the reservation that holds its worst case;
    `busy` names the models Auto asked before it, which answered busy (`Gateway.fallback`)."""

    choice: Choice
    body: bytes
    reservation: Reservation
    busy: tuple[str, ...] = ()
    released: bool = False  # its reservation was settled free (the upstream failed before any output)


async def _reserve(
    request: Request, gateway: Gateway, account: Account | Caller, turn: TurnRequest, choice: Choice
) -> _Attempt:
    """The body for `choice`'s model, and its worst case reserved (raises `GatewayRefusal`)."""
    request.state.routed_model = choice.model.id
    body = await gateway.bodies.upstream_body(turn, _anthropic_model(choice))
    reserving = time.monotonic()
    reservation = await gateway.reserve(account, turn, choice, estimate_input_tokens(body))
    request.state.reserve_ms = elapsed_ms(reserving)
    return _Attempt(choice, body, reservation)


async def _parse_unless_client_leaves(request: Request, gateway: Gateway, raw: bytes) -> TurnRequest | None:
    """A large body's turn, parsed on the gateway's parsing thread (which it may wait for); None if its
    client left meanwhile. The client's leaving is watched while it waits: a check afterwards would not see
    it, since the server reads nothing more from the connection until asked."""
    watch = asyncio.ensure_future(client_disconnected(request.receive))
    try:
        turn = await gateway.bodies.parse(request.headers, raw, gateway.settings)
    finally:
        watch.cancel()
    return None if watch.done() and not watch.cancelled() else turn


def _anthropic_model(choice: Choice) -> str:
    model = choice.model.anthropic_model
    assert model is not None  # a concrete model
    return model


async def _forward(
    request: Request, gateway: Gateway, account: Account | Caller, turn: TurnRequest, attempt: _Attempt
) -> Response:
    while True:
        try:
            sending = time.monotonic()
            upstream = await gateway.upstream.send(attempt.body, request.headers, stream=turn.stream)
            request.state.upstream_ms = elapsed_ms(sending)
            content = await gateway.upstream.read(upstream) if upstream.status >= 400 else b""
        except UpstreamFailure:
            await _free(gateway, attempt.reservation, "the Anthropic API could not be reached")
            attempt.released = True
            return _with_route(unreachable(), attempt)
        if upstream.status < 400:
            break
        await _free(gateway, attempt.reservation, f"the Anthropic API answered HTTP {upstream.status}")
        attempt.released = True
        if not await _fall_back(request, gateway, account, turn, attempt, upstream.status, content):
            return _with_route(
                relay_error(upstream.status, content, upstream.headers, gateway.upstream.redact), attempt
            )
    if turn.stream:
        # A cut turn's thinking is timed (`metering`) at the answering model's speed ceiling.
        speed = attempt.choice.model.output_tokens_per_second_ceiling
        meter = StreamMeter(turn.thinking_budget, turn.max_tokens, tokens_per_second=speed)
        stream = TurnStream(gateway, attempt.reservation, attempt.choice.reason, upstream, meter)
        return _with_busy(stream, attempt)
    return await _whole_answer(request, gateway, attempt, upstream)


async def _fall_back(
    request: Request,
    gateway: Gateway,
    account: Account | Caller,
    turn: TurnRequest,
    attempt: _Attempt,
    status: int,
    content: bytes,
) -> bool:
    """Auto's model answered busy before any output (its attempt already released, free): move `attempt` to
    the next model Auto may use, reserved again for that model's worst case, and say True; False when there
    is none (a concrete model, every Auto model busy, or the fallback's reservation refused), and the busy
    answer is passed on. The client cannot choose Auto's model: only the gateway falls back."""
    if not is_busy(status, _error_type(content)):
        return False
    tried = [*attempt.busy, attempt.choice.model.id]
    fallback = gateway.fallback(account, turn, attempt.choice, tried)
    if fallback is None:
        return False
    try:
        moved = await _reserve(request, gateway, account, turn, fallback)
    except (GatewayRefusal, LedgerUnavailable) as refused:
        why = refused.status if isinstance(refused, GatewayRefusal) else "the ledger is unavailable"
        log.info(
            "Auto's fallback from a busy %s to %s was refused (%s): passing on the busy answer",
            attempt.choice.model.id,
            fallback.model.id,
            why,
        )
        request.state.routed_model = attempt.choice.model.id
        return False
    attempt.choice, attempt.body, attempt.reservation = moved.choice, moved.body, moved.reservation
    attempt.released = False
    attempt.busy = tuple(tried)
    return True


async def _whole_answer(
    request: Request, gateway: Gateway, attempt: _Attempt, upstream: UpstreamAnswer
) -> Response:
    reservation, reason = attempt.reservation, attempt.choice.reason
    content = await gateway.upstream.read(upstream)
    message = _json_object(content)
    if message is None:
        await _free(gateway, reservation, "the Anthropic API sent an unreadable answer")
        return _with_route(unreachable(), attempt)
    try:
        settlement = await gateway.settle_waiting(reservation, Outcome("complete", usage_of_message(message)))
    except LedgerUnavailable as error:
        # Charged before it is delivered, or not delivered (an answer handed over uncharged could stay free
        # if this replica died before PostgreSQL came back). Released free once it is back; the client's
        # retry of the turn id is answered then.
        log.error("could not charge a whole answer (%s): released free, the client retries", error)
        failed = Outcome("failed", usage_of_message({}), "the ledger could not take the answer's charge")
        gateway.settle_later(reservation, failed)
        return _with_route(error_response(503, "api_error", LEDGER_AWAY, retry=True), attempt)
    info = charge_info(reservation, reason, settlement)
    request.state.turn_status, request.state.credits = settlement.status, info["credits"]
    headers = {**route_headers(reservation, reason), "switchboard-credits": str(info["credits"])}
    body = answer_with_charge(content, message, info)
    return _with_busy(Response(body, media_type="application/json", headers=headers), attempt)


async def _free(gateway: Gateway, reservation: Reservation, reason: str) -> None:
    """Release a turn that produced nothing (free either way: its refusal goes out now even while
    PostgreSQL is away, and the release is retried until it is back)."""
    outcome = Outcome("failed", usage_of_message({}), reason)
    try:
        await gateway.settle(reservation, outcome)
    except LedgerUnavailable:
        gateway.settle_later(reservation, outcome)


def _with_route(response: Response, attempt: _Attempt) -> Response:
    response.headers.update(route_headers(attempt.reservation, attempt.choice.reason))
    return _with_busy(response, attempt)


def _with_busy(response: Response, attempt: _Attempt) -> Response:
    if attempt.busy:
        response.headers[BUSY_MODELS_HEADER] = ",".join(attempt.busy)
    return response


def _error_type(content: bytes) -> str | None:
    """The `error.type` of an upstream error body, when it has one."""
    error = (_json_object(content) or {}).get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's parser goes
        return None
    return value if isinstance(value, dict) else None
