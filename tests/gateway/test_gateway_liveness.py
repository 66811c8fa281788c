"""What a replica's checkpoints send: every live turn on a heartbeat, only the grown ones in between, and
again after a statement that failed (a checkpoint counts as sent once PostgreSQL holds it)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import timedelta

import pytest

from switchboard.gateway.db import LedgerPool, LedgerUnavailable
from switchboard.gateway.ledger import Checkpoint, Reservation, TurnKey
from switchboard.gateway.liveness import LiveTurns, checkpoint_once
from switchboard.gateway.metering import StreamMeter

HAIKU = "claude-haiku-4.5"


def reservation(turn_id: str) -> Reservation:
    return Reservation(TurnKey("acct", turn_id), "2026-12", HAIKU, "claude-haiku-4-5-20251001", 1000)


def started(meter: StreamMeter) -> None:
    meter.observe("message_start", {"message": {"usage": {"input_tokens": 12, "output_tokens": 1}}})


def text(meter: StreamMeter, words: str) -> None:
    meter.delta(json.dumps({"type": "content_block_delta", "delta": {"type": "text_delta", "text": words}}))


def test_only_turns_whose_output_began_or_grew_are_checkpointed_between_heartbeats() -> None:
    live = LiveTurns()
    waiting, quiet, growing = reservation("waiting"), reservation("quiet"), reservation("growing")
    quiet_meter, growing_meter = StreamMeter(), StreamMeter()
    for turn in (waiting, quiet, growing):
        live.add(turn)
    live.meter(quiet, quiet_meter)
    live.meter(growing, growing_meter)
    started(quiet_meter)
    started(growing_meter)
    assert live.grown() == []  # no output anywhere yet: nothing to record

    text(quiet_meter, "one two three four five six")
    text(growing_meter, "alpha")
    sent = live.grown()
    assert {point.reservation.key.turn_id for point in live.grown()} == {"quiet", "growing"}  # not yet held
    live.recorded(sent)
    first = {point.reservation.key.turn_id: point for point in sent}
    assert set(first) == {"quiet", "growing"}
    assert all(point.output_seen for point in first.values())
    assert first["quiet"].usage.input_tokens == 12 and first["quiet"].usage.output_tokens > 0

    text(growing_meter, " beta gamma delta epsilon zeta eta theta")
    [second] = live.grown()  # quiet has nothing new
    assert second.reservation.key.turn_id == "growing"
    assert second.usage.output_tokens > first["growing"].usage.output_tokens
    live.recorded([second])
    assert live.grown() == []

    # A heartbeat renews every live turn, the waiting one and the unchanged ones included.
    assert {point.reservation.key.turn_id for point in live.checkpoints()} == {"waiting", "quiet", "growing"}


def test_a_settled_turn_is_forgotten_and_a_new_attempt_is_checkpointed_afresh() -> None:
    live = LiveTurns()
    first = reservation("t")
    meter = StreamMeter()
    live.add(first)
    live.meter(first, meter)
    text(meter, "some words")
    live.recorded(live.grown())
    assert live.grown() == []
    live.discard(first)
    assert live.grown() == [] and live.checkpoints() == []

    # The retry of a turn whose first attempt PostgreSQL lost is attempt 1 again: only its id tells it apart.
    retry = dataclasses.replace(first, attempt_id=uuid.uuid4())
    again = StreamMeter()
    live.add(retry)
    live.meter(retry, again)
    text(again, "some words")
    # The first attempt's checkpoint, acknowledged only now (its statement was in flight), is not the retry's.
    live.recorded([Checkpoint(first, again.usage(), output_seen=True)])
    [point] = live.grown()
    assert point.reservation is retry


def test_an_attempt_replaced_on_the_same_replica_leaves_its_replacement_alone() -> None:
    """PostgreSQL lost attempt A; the client's retry B (attempt 1 again) came to the replica still relaying A.
    A's stream starting, and A's settlement, must leave B live and unmetered by A."""
    live = LiveTurns()
    lost = reservation("t")
    retry = dataclasses.replace(lost, attempt_id=uuid.uuid4())
    live.add(lost)
    live.add(retry)
    meter = StreamMeter()
    live.meter(lost, meter)
    text(meter, "the lost attempt's words")
    live.discard(lost)
    [point] = live.checkpoints()
    assert point.reservation is retry and point.usage.output_tokens == 0
    assert retry.attempt_id in live and lost.attempt_id not in live


async def test_a_checkpoint_postgresql_did_not_take_is_sent_again() -> None:
    live = LiveTurns()
    turn, meter = reservation("t"), StreamMeter()
    live.add(turn)
    live.meter(turn, meter)
    text(meter, "words that must be charged if this replica dies")
    # Nothing listens on port 1: the statement fails as it would while PostgreSQL restarts.
    pool = LedgerPool("postgresql://nobody@127.0.0.1:1/none", max_size=2, connect_timeout=2)
    try:
        with pytest.raises(LedgerUnavailable):
            await checkpoint_once(pool, live, timedelta(seconds=6))
    finally:
        await pool.close(timeout=1)
    [again] = live.grown()
    assert again.reservation == turn and again.usage.output_tokens > 0


async def test_reading_many_streams_deltas_gives_the_event_loop_back_between_slices() -> None:
    live = LiveTurns()
    meters = []
    for index in range(200):
        turn, meter = reservation(f"t{index}"), StreamMeter()
        live.add(turn)
        live.meter(turn, meter)
        started(meter)
        for _ in range(100):
            text(meter, "seven__")  # two tokens each, at 3.5 characters a token
        meters.append(meter)
    reading = asyncio.ensure_future(live.read_meters())
    turns_of_others = 0
    while not reading.done():  # another request's task, waiting for its turn on the loop
        await asyncio.sleep(0)
        turns_of_others += 1
    await reading
    # 20,000 deltas take tens of milliseconds to read: the loop ran other tasks in between, many times.
    assert turns_of_others > 10
    # and every delta was read, each counted once
    assert all(meter.usage().output_tokens == 200 for meter in meters)
    assert all(point.usage.output_tokens == 200 for point in live.grown())
