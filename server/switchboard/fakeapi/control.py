"""The control API under `/_fake/`, for processes that cannot reach the FakeAnthropic object.

`POST /_fake/faults` (a Fault as a JSON object, or a list of them), `GET /_fake/faults`,
`GET /_fake/requests` (the recorded requests) and `POST /_fake/reset`. Control requests are not recorded.
"""

from __future__ import annotations

import dataclasses

from switchboard.fakeapi.errors import invalid
from switchboard.fakeapi.exchange import Exchange
from switchboard.fakeapi.faults import Fault

PREFIX = "/_fake/"


def add_faults(exchange: Exchange) -> None:
    items = exchange.body if isinstance(exchange.body, list) else [exchange.body]
    try:
        faults = [Fault.from_json(item) for item in items]
    except (TypeError, ValueError) as error:
        raise invalid(f"Invalid fault: {error}") from None
    for fault in faults:
        exchange.state.faults.add(fault)
    _ok(exchange, {"added": len(faults)})


def list_faults(exchange: Exchange) -> None:
    _ok(exchange, [dataclasses.asdict(fault) for fault in exchange.state.faults.pending()])


def list_requests(exchange: Exchange) -> None:
    _ok(exchange, [record.to_json() for record in exchange.state.log.snapshot()])


def reset(exchange: Exchange) -> None:
    exchange.state.reset()
    _ok(exchange, {"reset": True})


def _ok(exchange: Exchange, payload: object) -> None:
    exchange.response.send_json(200, payload, exchange.response_headers())
