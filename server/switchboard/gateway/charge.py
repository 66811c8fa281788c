"""How a turn's route and charge reach the client: response headers, and a `switchboard` object.

Headers (all responses to a forwarded turn): `Switchboard-Turn-Id`, `Switchboard-Model` (billed as),
`Switchboard-Routed-Model` (answered), `Switchboard-Route-Reason` (percent-encoded UTF-8) and
`Switchboard-Reserved-Credits`. The charge is known only at the end: a non-streaming answer carries it in
`Switchboard-Credits` and in the body's `switchboard` object; a stream carries the same object in its
`message_delta` event (or its final `error` event), which the SDK passes through untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from switchboard.plans.credits import from_hundredths

from .ledger import Reservation, Settlement


def route_headers(reservation: Reservation, route_reason: str) -> dict[str, str]:
    return {
        "switchboard-turn-id": reservation.key.turn_id,
        "switchboard-model": reservation.model_id,
        "switchboard-routed-model": reservation.routed_model,
        "switchboard-route-reason": quote(route_reason, safe=" ,;:()/+-.'"),
        "switchboard-reserved-credits": str(from_hundredths(reservation.reserved_h)),
    }


def charge_info(reservation: Reservation, route_reason: str, settlement: Settlement) -> dict[str, Any]:
    return {
        "turn_id": reservation.key.turn_id,
        "model_id": reservation.model_id,
        "routed_model": reservation.routed_model,
        "route_reason": route_reason,
        "status": settlement.status,
        "credits": float(from_hundredths(settlement.credits_h)),
        "overage_credits": float(from_hundredths(settlement.overage_h)),
    }
