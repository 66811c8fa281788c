"""Several replicas on one database: a killed replica's reservation is released by another; load."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx2
import pytest

from gateway.gateway_support import (
    RESERVATION_TTL,
    Accounts,
    CuttableLine,
    Replica,
    ReplicaForker,
    TestAccount,
    balance,
    expected_credits,
    sdk,
    turn_headers,
    turn_rows,
    wait_settled,
)
from switchboard.gateway.metering import CUT_CHARS_PER_TOKEN
from switchboard.protocol.messages import Usage

HAIKU = "claude-haiku-4-5-20251001"
SONNET_45 = "claude-sonnet-4-5-20250929"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def doomed(gateway_env: dict[str, str], tmp_path: Path) -> Any:
    replica = Replica.start(gateway_env, tmp_path / "doomed.log")
    yield replica
    replica.stop()


async def test_a_replica_killed_mid_stream_has_its_reservation_released_by_another(
    make_accounts: Accounts, replicas: list[Replica], doomed: Replica
) -> None:
    account = await make_accounts.create("pro")
    text = ""
    started = time.monotonic()
    headers = turn_headers("claude-haiku-4.5")
    async with sdk(doomed.url, account.token) as client:
        with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
            async with client.messages.stream(
                model=HAIKU,
                max_tokens=2000,
                messages=user("Essay. [[fake:words=200 slow=0.05]]"),
                extra_headers=headers,
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        text += event.text
                    # Long enough for a checkpoint (every third of the reservation's life) to see output.
                    if time.monotonic() - started > RESERVATION_TTL * 0.8 and doomed.process.poll() is None:
                        doomed.kill()
    assert text
    held = await balance(make_accounts.database_url, account.id)
    assert held["reserved_h"] > 0  # still held: nobody has released it yet
    row = await wait_settled(make_accounts.database_url, account.id, timeout=RESERVATION_TTL * 4)
    # Released by a surviving replica, charged at the last checkpoint: output counted from the deltas.
    assert row["status"] == "cut" and row["reason"] == "the replica serving it stopped"
    assert 0 < row["output_tokens"] <= math.ceil(len(text) / CUT_CHARS_PER_TOKEN)
    assert row["credits_h"] > 0
    final = await balance(make_accounts.database_url, account.id)
    assert final == {"used_h": row["credits_h"], "overage_h": 0, "reserved_h": 0}
    # The answer was cut after output began: the same turn id is settled, on any replica.
    async with sdk(replicas[0].url, account.token) as client:
        with pytest.raises(anthropic.ConflictError):
            await client.messages.create(
                model=HAIKU, max_tokens=50, messages=user("again"), extra_headers=headers
            )


async def test_a_replica_killed_soon_after_output_began_leaves_that_output_charged(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    # Its first heartbeat comes 5 s after it starts (a third of 15 s); the kill comes well before, so only
    # the checkpoint of grown output (every 0.2 s here) can have recorded the answer.
    ttl = 15.0
    env = gateway_env | {
        "SWITCHBOARD_GATEWAY_RESERVATION_TTL_SECONDS": str(ttl),
        "SWITCHBOARD_GATEWAY_CHECKPOINT_INTERVAL_SECONDS": "0.2",
    }
    forker = ReplicaForker(env, tmp_path)
    # The first replica waits for the forker's imports; the second starts in a fraction of a second, so the
    # time from its launch to the kill is not Python's start-up on a loaded machine.
    forker.start().stop()
    launched = time.monotonic()
    replica = forker.start()
    try:
        account = await make_accounts.create("pro")
        text = ""
        first_text = killed = 0.0
        async with sdk(replica.url, account.token) as client:
            with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
                async with client.messages.stream(
                    model=HAIKU,
                    max_tokens=2000,
                    messages=user("Essay. [[fake:words=200 slow=0.05]]"),
                    extra_headers=turn_headers("claude-haiku-4.5"),
                ) as stream:
                    async for event in stream:
                        if event.type == "text":
                            text += event.text
                            first_text = first_text or time.monotonic()
                        alive = replica.alive()
                        if alive and first_text and time.monotonic() - first_text > 0.6:
                            replica.kill()
                            killed = time.monotonic()
        assert text
        # Otherwise the first heartbeat could have recorded the output, and this test would prove nothing.
        assert killed - launched < ttl / 3, f"killed {killed - launched:.1f} s after start, too late"
        row = await wait_settled(make_accounts.database_url, account.id, timeout=ttl * 3)
        assert row["status"] == "cut" and row["reason"] == "the replica serving it stopped"
        assert 0 < row["output_tokens"] <= math.ceil(len(text) / CUT_CHARS_PER_TOKEN)
        assert row["credits_h"] > 0
    finally:
        forker.close()


async def test_a_replica_killed_before_any_output_costs_nothing_and_the_turn_can_be_asked_again(
    make_accounts: Accounts, replicas: list[Replica], doomed: Replica
) -> None:
    account = await make_accounts.create("pro")
    headers = turn_headers("claude-haiku-4.5")

    async def ask() -> None:
        async with sdk(doomed.url, account.token) as client:
            await client.messages.create(
                model=HAIKU, max_tokens=100, messages=user("hi [[fake:stall=30]]"), extra_headers=headers
            )

    asking = asyncio.ensure_future(ask())
    while not await turn_rows(make_accounts.database_url, account.id):
        await asyncio.sleep(0.05)
    doomed.kill()
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        await asking
    row = await wait_settled(make_accounts.database_url, account.id, timeout=RESERVATION_TTL * 4)
    assert row["status"] == "failed" and row["credits_h"] == 0
    async with sdk(replicas[1].url, account.token) as client:
        message = await client.messages.create(
            model=HAIKU, max_tokens=100, messages=user("hi"), extra_headers=headers
        )
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["attempts"] == 2
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)


async def test_a_stream_longer_than_its_reservation_renews_it_and_is_never_reaped(
    make_accounts: Accounts, replicas: list[Replica]
) -> None:
    account = await make_accounts.create("pro")
    started = time.monotonic()
    async with (
        sdk(replicas[0].url, account.token) as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=1000,
            messages=user("Long essay. [[fake:words=70 slow=0.15]]"),
            extra_headers=turn_headers("claude-haiku-4.5"),
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert time.monotonic() - started > RESERVATION_TTL * 1.5  # outlived its first reservation
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["reason"] is None and row["attempts"] == 1
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)


async def wait_for_row(database_url: str, account_id: str, ready: Any, timeout: float) -> dict[str, Any]:
    """The account's only turn once `ready(row)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await turn_rows(database_url, account_id)
        if rows and ready(rows[0]):
            return rows[0]
        assert time.monotonic() < deadline, f"no turn row as expected after {timeout}s: {rows}"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def stopped(replica: Replica) -> Iterator[None]:
    """The replica frozen (SIGSTOP) as a stalled host would be, thawed (SIGCONT) on leaving."""
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)


async def test_a_replica_stalled_past_the_reservation_mid_stream_is_charged_its_real_usage_once(
    make_accounts: Accounts, replicas: list[Replica], doomed: Replica
) -> None:
    account = await make_accounts.create("pro")
    url = make_accounts.database_url
    headers = turn_headers("claude-haiku-4.5")
    async with (
        sdk(doomed.url, account.token) as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=2000,
            messages=user("Essay. [[fake:words=120 slow=0.03]]"),
            extra_headers=headers,
        ) as stream,
    ):
        async for event in stream:
            if event.type == "text":
                break
        # Once a heartbeat has checkpointed some output, freeze the replica until another one's reaper has
        # settled the turn from that checkpoint (provisionally: the replica is stalled, not dead).
        await wait_for_row(url, account.id, lambda row: row["output_seen"], RESERVATION_TTL * 4)
        with stopped(doomed):
            reaped = await wait_for_row(
                url, account.id, lambda r: r["status"] != "reserved", RESERVATION_TTL * 6
            )
            provisional = await balance(url, account.id)
        assert (reaped["status"], reaped["provisional"]) == ("cut", True)
        assert provisional == {"used_h": reaped["credits_h"], "overage_h": 0, "reserved_h": 0}
        assert reaped["credits_h"] > 0
        told: dict[str, Any] = {}
        async for event in stream:  # the thawed replica finishes the answer
            if event.type == "message_delta":
                told = (event.model_extra or {})["switchboard"]
        message = await stream.get_final_message()
    charge = expected_credits("claude-haiku-4.5", message.usage)
    assert Decimal(reaped["credits_h"]) / 100 < charge
    [row] = await turn_rows(url, account.id)
    assert (row["status"], row["provisional"], row["attempts"]) == ("complete", False, 1)
    assert Decimal(row["credits_h"]) / 100 == charge  # the real usage, not the reaper's checkpoint
    assert await balance(url, account.id) == {"used_h": row["credits_h"], "overage_h": 0, "reserved_h": 0}
    # The stream's own message_delta told the client the same figure, and a repeat charges nothing.
    assert (told["status"], Decimal(str(told["credits"]))) == ("complete", charge)
    async with sdk(replicas[0].url, account.token) as client:
        with pytest.raises(anthropic.ConflictError):
            await client.messages.create(
                model=HAIKU, max_tokens=50, messages=user("again"), extra_headers=headers
            )
    assert (await balance(url, account.id))["used_h"] == row["credits_h"]


async def test_a_replica_stalled_past_the_reservation_before_any_output_still_charges_its_answer(
    make_accounts: Accounts, replicas: list[Replica], doomed: Replica
) -> None:
    """Reaped as a free failure while Anthropic had not answered; the answer it then gets is charged."""
    account = await make_accounts.create("pro")
    url = make_accounts.database_url
    headers = turn_headers("claude-haiku-4.5")

    async def ask() -> Any:
        # Anthropic takes a second to answer, so the reservation is seen before the answer settles it.
        async with sdk(doomed.url, account.token) as client:
            return await client.messages.create(
                model=HAIKU,
                max_tokens=100,
                messages=user("hi [[fake:words=30 stall=1]]"),
                extra_headers=headers,
            )

    with stopped(doomed):
        asking = asyncio.ensure_future(ask())  # accepted by the kernel, read once the replica thaws
        await asyncio.sleep(0.2)
    await wait_for_row(url, account.id, lambda row: row["status"] == "reserved", RESERVATION_TTL * 4)
    with stopped(doomed):
        reaped = await wait_for_row(url, account.id, lambda r: r["status"] != "reserved", RESERVATION_TTL * 6)
    assert (reaped["status"], reaped["credits_h"], reaped["provisional"]) == ("failed", 0, True)
    message = await asking
    [row] = await turn_rows(url, account.id)
    assert (row["status"], row["provisional"], row["attempts"]) == ("complete", False, 1)
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)
    assert await balance(url, account.id) == {"used_h": row["credits_h"], "overage_h": 0, "reserved_h": 0}


@contextlib.asynccontextmanager
async def behind_a_line(
    gateway_env: dict[str, str], log_path: Path, **settings: str
) -> AsyncIterator[tuple[Replica, CuttableLine]]:
    """A replica of its own whose ledger is reached through a line the test cuts (its pools give up on a
    connection after 0.5 s), with `settings` added to its environment; stopped, and the line closed, after."""
    database = urlsplit(gateway_env["SWITCHBOARD_GATEWAY_DATABASE_URL"])
    line = CuttableLine(database.port or 5432)
    via_line = database._replace(netloc=f"{database.username}@127.0.0.1:{await line.start()}").geturl()
    env = {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_DATABASE_URL": via_line,
        "SWITCHBOARD_GATEWAY_POOL_TIMEOUT_SECONDS": "0.5",
        **settings,
    }
    owner = await asyncio.to_thread(Replica.start, env, log_path)
    try:
        yield owner, line
    finally:
        owner.stop()
        await line.close()


async def answer_cut_off_from_the_ledger(owner: Replica, line: CuttableLine, account: TestAccount) -> None:
    """A streamed answer from `owner`, whose ledger goes away once output has begun: the stream ends with a
    retryable `api_error` (its charge is not committed yet) and the replica retries the settlement."""
    text = ""
    async with sdk(owner.url, account.token) as client:
        with pytest.raises(anthropic.APIStatusError) as refused:
            async with client.messages.stream(
                model=HAIKU,
                max_tokens=300,
                messages=user("An essay. [[fake:words=40 slow=0.05]]"),
                extra_headers=turn_headers("claude-haiku-4.5"),
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        if not text:
                            line.cut()  # output has begun; the ledger goes away for this replica only
                        text += event.text
    assert text and refused.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def charged_in_full(row: dict[str, Any]) -> bool:
    """The turn settled `complete` by its own replica at the usage it streamed (not a sweep's checkpoint)."""
    usage = Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"])
    full = Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage)
    return (row["status"], row["provisional"], row["attempts"]) == ("complete", False, 1) and full


async def test_an_answer_settled_once_its_replica_reaches_the_ledger_again_is_charged_in_full_after_a_reap(
    make_accounts: Accounts, replicas: list[Replica], gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """The restart flake, on purpose: the answering replica loses PostgreSQL once output has begun (the
    others keep it), so its settlement is refused and retried while another replica reaps the expired
    reservation at its checkpoint (no heartbeat recorded output: charged 0). That is a provisional state,
    not the end: once the replica reaches the ledger again, its retried settlement charges the whole
    answer."""
    account = await make_accounts.create("pro")
    url = make_accounts.database_url
    async with behind_a_line(gateway_env, tmp_path / "owner.log") as (owner, line):
        await answer_cut_off_from_the_ledger(owner, line, account)
        reaped = await wait_for_row(url, account.id, lambda r: r["status"] != "reserved", RESERVATION_TTL * 8)
        assert reaped["provisional"] is True and reaped["reason"] == "the replica serving it stopped"
        line.restore()
        row = await wait_for_row(url, account.id, lambda r: not r["provisional"], 40)
    assert charged_in_full(row) and row["output_tokens"] > 0 and row["credits_h"] > reaped["credits_h"]
    assert await balance(url, account.id) == {"used_h": row["credits_h"], "overage_h": 0, "reserved_h": 0}


async def test_a_replica_stopped_while_its_ledger_is_away_retries_its_settlements_for_a_while_first(
    make_accounts: Accounts, replicas: list[Replica], gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM while an answer's settlement is being retried (a PostgreSQL restart, seen by this replica):
    it keeps retrying for up to `shutdown_settle_seconds` before it exits, so a ledger back within them
    still charges the whole answer (2 s were given before, less than a pool may take to reconnect)."""
    account = await make_accounts.create("pro")
    url = make_accounts.database_url
    settings = {"SWITCHBOARD_GATEWAY_SHUTDOWN_SETTLE_SECONDS": "20"}
    async with behind_a_line(gateway_env, tmp_path / "owner.log", **settings) as (owner, line):
        await answer_cut_off_from_the_ledger(owner, line, account)
        owner.process.terminate()
        await asyncio.sleep(3)
        assert owner.process.poll() is None  # still retrying
        line.restore()
        await asyncio.to_thread(owner.process.wait, 20)
    row = await wait_for_row(url, account.id, charged_in_full, 10)
    assert await balance(url, account.id) == {"used_h": row["credits_h"], "overage_h": 0, "reserved_h": 0}
    log = owner.log()
    assert "settled a turn once PostgreSQL was back" in log and "Application shutdown complete." in log


async def test_a_replica_stopped_while_its_ledger_stays_away_leaves_its_settlements_to_the_sweep_in_time(
    make_accounts: Accounts, replicas: list[Replica], gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """The retries at shutdown are bounded: `shutdown_settle_seconds` after SIGTERM (no stream left, no
    delay) the replica exits, within the orchestrator's grace period, saying what it left; a sweep settles
    the turn at its last checkpoint."""
    account = await make_accounts.create("pro")
    settings = {"SWITCHBOARD_GATEWAY_SHUTDOWN_SETTLE_SECONDS": "3"}
    async with behind_a_line(gateway_env, tmp_path / "owner.log", **settings) as (owner, line):
        await answer_cut_off_from_the_ledger(owner, line, account)
        signalled = time.monotonic()
        owner.process.terminate()
        await asyncio.to_thread(owner.process.wait, 15)
        stopped_after = time.monotonic() - signalled
    assert 3 <= stopped_after < 3 + 4, stopped_after
    log = owner.log()
    assert "stopping with 1 settlement(s) PostgreSQL has not taken after 3 s" in log
    assert "Application shutdown complete." in log
    url = make_accounts.database_url
    swept = await wait_for_row(url, account.id, lambda r: r["status"] != "reserved", RESERVATION_TTL * 8)
    assert swept["provisional"] is True and swept["reason"] == "the replica serving it stopped"


async def test_a_replica_stopped_with_sigterm_finishes_its_streams_first(
    make_accounts: Accounts, doomed: Replica
) -> None:
    account = await make_accounts.create("pro")
    async with (
        sdk(doomed.url, account.token) as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=1000,
            messages=user("Essay. [[fake:words=40 slow=0.05]]"),
            extra_headers=turn_headers("claude-haiku-4.5"),
        ) as stream,
    ):
        async for event in stream:
            if event.type == "text":
                doomed.process.terminate()  # a deploy: SIGTERM while the answer streams
                break
        message = await stream.get_final_message()
    doomed.process.wait(10)  # uvicorn ends by re-raising SIGTERM once it has shut down cleanly
    assert "Application shutdown complete." in doomed.log()
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete"
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)


async def test_a_replica_out_of_rotation_on_sigterm_serves_through_its_delay_then_drains_within_its_grace(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM: /readyz answers 503 at once while the replica still serves new requests for
    `shutdown_delay_seconds` (the load balancer takes it out of rotation before its listener closes), then it
    stops accepting and drains; a stream longer than `shutdown_grace_seconds` does not hold it longer."""
    account = await make_accounts.create("pro")
    env = {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_SHUTDOWN_DELAY_SECONDS": "2",
        "SWITCHBOARD_GATEWAY_SHUTDOWN_GRACE_SECONDS": "2",
    }
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "delayed.log")
    try:
        async with (
            sdk(replica.url, account.token, max_retries=0) as client,
            client.messages.stream(
                model=HAIKU,
                max_tokens=1000,
                messages=user("Essay. [[fake:words=400 slow=0.05]]"),  # 20 s: longer than delay + grace
                extra_headers=turn_headers("claude-haiku-4.5"),
            ) as stream,
        ):
            async for event in stream:
                if event.type == "text":
                    break
            signalled = time.monotonic()
            replica.process.terminate()
            await asyncio.sleep(0.3)
            ready = await asyncio.to_thread(httpx2.get, replica.url + "/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "shutting down"}
            # Still accepting and serving during the delay.
            assert (await asyncio.to_thread(httpx2.get, replica.url + "/healthz")).status_code == 200
            with contextlib.suppress(anthropic.APIError, httpx2.HTTPError):
                async for _ in stream:
                    pass
        await asyncio.to_thread(replica.process.wait, 15)
        stopped_after = time.monotonic() - signalled
    finally:
        replica.stop()
    assert 2 + 2 <= stopped_after < 2 + 2 + 6, stopped_after
    log = replica.log()
    assert "SIGTERM: /readyz answers 503; serving 2 s more" in log
    assert "timeout graceful shutdown exceeded" in log and "Application shutdown complete." in log


async def test_fifty_streams_from_ten_accounts_across_two_replicas_add_up(
    make_accounts: Accounts, replicas: list[Replica]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    accounts = [await make_accounts.create(rng.choice(["pro", "pro_plus", "power"])) for _ in range(10)]
    models = {"claude-haiku-4.5": HAIKU, "claude-sonnet-4.5": SONNET_45, "auto": SONNET_45}
    plan = [(accounts[i % 10], rng.choice(list(models)), rng.randrange(5, 60)) for i in range(50)]
    clients = [sdk(r.url, a.token) for r in replicas for a in accounts]

    async def one(index: int) -> tuple[str, Decimal]:
        account, model_id, words = plan[index]
        client = clients[(index % 2) * 10 + accounts.index(account)]
        async with client.messages.stream(
            model=models[model_id],
            max_tokens=400,
            messages=user(f"Question {index}. [[fake:words={words}]]"),
            extra_headers=turn_headers(model_id),
        ) as stream:
            message = await stream.get_final_message()
        return account.id, expected_credits(model_id, message.usage)

    results = await asyncio.gather(*(one(i) for i in range(50)))
    for client in clients:
        await client.close()
    for account in accounts:
        expected = sum((credits for owner, credits in results if owner == account.id), Decimal(0))
        final = await balance(make_accounts.database_url, account.id)
        assert final["reserved_h"] == 0, f"seed {seed}"
        assert Decimal(final["used_h"]) / 100 == expected, f"seed {seed}"
        rows = await turn_rows(make_accounts.database_url, account.id)
        assert len(rows) == 5 and {row["status"] for row in rows} == {"complete"}, f"seed {seed}"
