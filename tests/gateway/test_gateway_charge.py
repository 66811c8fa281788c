"""What the client is told of a turn's charge: the figures, and the charge written into a non-streaming
answer (the upstream bytes kept, the `switchboard` object added before their closing brace, and a
re-encoding whenever keeping them could not give the same object)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.gateway.charge import answer_with_charge, charge_info, route_headers
from switchboard.gateway.ledger import Reservation, Settlement, TurnKey
from switchboard.plans.credits import from_hundredths

INFO: dict[str, Any] = {
    "turn_id": "t-1",
    "status": "complete",
    "credits": 0.01,
    "route_reason": "Chosen by you",
}


@pytest.mark.parametrize(
    "content",
    [
        b'{"id":"msg_1","content":[{"type":"text","text":"caf\\u00e9 \xc3\xa9"}],"usage":{"input_tokens":3}}',
        b'  {"id": "msg_1", "usage": {"output_tokens": 3}}\r\n',  # whitespace either side, spaced keys
        b'{"nested":{"switchboard":1}}',  # only a top-level key is the charge's
    ],
)
def test_the_upstream_bytes_are_kept_and_the_charge_added(content: bytes) -> None:
    message = json.loads(content)
    answered = answer_with_charge(content, message, INFO)
    assert json.loads(answered) == {**message, "switchboard": INFO}
    assert answered.startswith(content.strip()[:-1])  # not re-encoded


@pytest.mark.parametrize(
    "content",
    [
        b"{}",  # no key to follow
        b'{"switchboard":"upstream\'s own","id":"msg_1"}',  # replaced, never sent twice
        b'{"\\u0073witchboard":1}',  # the same key, spelled otherwise
        b'\xef\xbb\xbf{"id":"msg_1"}',  # a byte-order mark
        '{"id":"msg_1"}'.encode("utf-16-be"),
    ],
)
def test_an_answer_that_cannot_be_kept_as_sent_is_re_encoded(content: bytes) -> None:
    message = json.loads(content)
    answered = answer_with_charge(content, message, INFO)
    assert json.loads(answered) == {**message, "switchboard": INFO}
    assert answered.count(b'"switchboard"') == 1


@pytest.mark.parametrize("hundredths", [0, 1, 9, 10, 99, 100, 101, 1234, 39_000, 10**12 + 7, -5])
def test_credit_figures_are_those_of_exact_decimals(hundredths: int) -> None:
    reservation = Reservation(TurnKey("acc", "t-1"), "2026-12", "auto", "claude-haiku-4.5", hundredths)
    settlement = Settlement("t-1", "complete", hundredths, hundredths)
    headers = route_headers(reservation, "Chosen by you")
    info = charge_info(reservation, "Chosen by you", settlement)
    assert headers["switchboard-reserved-credits"] == str(from_hundredths(hundredths))
    assert info["credits"] == info["overage_credits"] == float(from_hundredths(hundredths))
