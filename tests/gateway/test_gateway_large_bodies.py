"""Large request bodies (docs/gateway.md, "Large bodies"): what a parse costs is the JSON values a body
makes, so a body that could make too many is refused before it is parsed, and a large one is parsed off the
event loop, one at a time, while the replica goes on answering.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from gateway.gateway_support import HTTP, Accounts, Replica, turn_headers, turn_rows
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.body import LargeBodies
from switchboard.gateway.config import MAX_BODY_JSON_ITEMS
from switchboard.gateway.errors import GatewayRefusal
from switchboard.gateway.turn_request import json_items

HEAD = (
    b'{"model":"claude-haiku-4-5-20251001","max_tokens":5,'
    b'"messages":[{"role":"user","content":"hi"}],"metadata":{"x":['
)


def with_empty_objects(count: int) -> bytes:
    """A body whose `metadata` holds `count` empty objects: cheap to send, dear to parse."""
    return HEAD + b"{}," * (count - 1) + b"{}]}}"


def test_json_items_bounds_the_values_a_parse_makes() -> None:
    assert json_items(b"{}") == 2
    assert json_items(b'{"a":[1,2,3],"b":{"c":null}}') == 7  # two objects, an array, 1, 2, 3, null
    assert json_items(b'{"text":"a, b, c"}') == 4  # commas in strings count too
    assert json_items(with_empty_objects(1000)) >= 1000


async def test_a_body_that_could_make_too_many_values_is_refused_400_before_parsing(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    raw = with_empty_objects(MAX_BODY_JSON_ITEMS // 2 + 1000)  # over the limit, under 2 MiB
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    response = HTTP.post(replica.url + "/v1/messages", content=raw, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "max_body_json_items" in error["message"] and f"{MAX_BODY_JSON_ITEMS:,}" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert await turn_rows(make_accounts.database_url, account.id) == []
    assert not any(len(record.raw_body) > 1_000_000 for record in upstream.received())


@pytest.fixture
def roomy_replica(gateway_env: dict[str, str], tmp_path: Path) -> Iterator[Replica]:
    """A replica that reads bodies of many values, so that one takes a while to parse."""
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_MAX_BODY_JSON_ITEMS": "20000000"}
    started = Replica.start(env, tmp_path / "roomy.log")
    try:
        yield started
    finally:
        started.stop()


async def test_the_replica_answers_while_it_parses_a_large_body(
    make_accounts: Accounts, roomy_replica: Replica
) -> None:
    """Three million objects take a second or more to parse; /healthz keeps answering meanwhile (before,
    the parse ran on the event loop, and two 32 MiB bodies held /healthz for 8-13 s)."""
    account = await make_accounts.create("free")
    raw = with_empty_objects(3_000_000)
    answers: list[httpx2.Response] = []

    def send() -> None:
        with httpx2.Client(timeout=120) as client:
            headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
            answers.append(client.post(roomy_replica.url + "/v1/messages", content=raw, headers=headers))

    sender = threading.Thread(target=send)
    sender.start()
    probes: list[float] = []
    with httpx2.Client(timeout=60) as client:
        while sender.is_alive():
            started = time.monotonic()
            assert client.get(roomy_replica.url + "/healthz").status_code == 200
            probes.append(time.monotonic() - started)
            time.sleep(0.02)
    sender.join()
    [answer] = answers
    assert answer.status_code == 402, answer.text  # parsed, then priced: a Free account cannot hold it
    assert len(probes) >= 5, probes  # the replica answered all along, not once before and once after
    assert max(probes) < 1.0, probes


async def test_large_bodies_wait_their_turn_and_past_the_queue_get_a_retryable_503() -> None:
    bodies = LargeBodies(max_waiting=1, wait_seconds=0.3)
    release = threading.Event()
    first = asyncio.create_task(bodies.run(lambda: release.wait(10)))
    await asyncio.sleep(0.05)  # the thread is parsing the first
    second = asyncio.create_task(bodies.run(lambda: "second"))  # waits
    await asyncio.sleep(0.05)
    with pytest.raises(GatewayRefusal) as full:  # one parsing, one waiting: the queue is full
        await bodies.run(lambda: "third")
    assert full.value.status == 503 and full.value.retry
    with pytest.raises(GatewayRefusal) as waited:  # the second waited past wait_seconds
        await second
    assert waited.value.status == 503 and full.value.headers["retry-after"] == "1"
    release.set()
    assert await first is True
    assert await bodies.run(lambda: "next") == "next"  # the places given back


async def test_a_large_body_whose_client_left_while_it_waited_is_not_sent_to_anthropic(
    make_accounts: Accounts, roomy_replica: Replica, upstream: FakeAnthropic
) -> None:
    """A large body waits its turn for the parsing thread, perhaps seconds. If its client is gone by then,
    its prompt must not go to Anthropic (which would bill it) nor its turn be held or charged."""
    account = await make_accounts.create("pro")
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    slow_to_parse = with_empty_objects(3_000_000)
    occupying = asyncio.create_task(
        asyncio.to_thread(
            lambda: httpx2.post(
                roomy_replica.url + "/v1/messages", content=slow_to_parse, headers=headers, timeout=120
            )
        )
    )
    await asyncio.sleep(0.3)  # the thread is parsing it
    marker = "left-while-waiting-" + "x" * 8
    leaving = turn_headers("claude-haiku-4.5")
    body = (
        b'{"model":"claude-haiku-4-5-20251001","max_tokens":5,"messages":[{"role":"user","content":"'
        + (marker + " " + "word " * 40_000).encode()
        + b'"}]}'
    )
    host, port = roomy_replica.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    lines = "".join(
        f"{name}: {value}\r\n"
        for name, value in {
            **leaving,
            "authorization": f"Bearer {account.token}",
            "content-type": "application/json",
            "content-length": str(len(body)),
        }.items()
    )
    writer.write(f"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\n{lines}\r\n".encode() + body)
    await writer.drain()
    writer.close()  # gone while its body waits for the thread
    assert (await occupying).status_code == 200
    await asyncio.sleep(0.5)
    assert not any(marker.encode() in record.raw_body for record in upstream.received())
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert leaving["Switchboard-Turn-Id"] not in {row["turn_id"] for row in rows}
