"""The charge written into a non-streaming answer: the upstream bytes kept, the `switchboard` object added
before their closing brace, and a re-encoding whenever keeping them could not give the same object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.gateway.charge import answer_with_charge

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
