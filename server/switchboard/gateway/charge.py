"""How a turn's route and charge reach the client: response headers, and a `switchboard` object.

Headers (all responses to a forwarded turn): `Switchboard-Turn-Id`, `Switchboard-Model` (billed as),
`Switchboard-Routed-Model` (answered), `Switchboard-Route-Reason` (percent-encoded UTF-8) and
`Switchboard-Reserved-Credits`; and, when Auto's model answered busy and the gateway fell back to another
(`Gateway.fallback`), `Switchboard-Busy-Models`: the models that were busy, in the order asked. The charge
is known only at the end: a non-streaming answer carries it in `Switchboard-Credits` and in the body's
`switchboard` object; a stream carries the same object in its `message_delta` event (or its final `error`
event), which the SDK passes through untouched.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from switchboard.plans.credits import from_hundredths

from .ledger import Reservation, Settlement

BUSY_MODELS_HEADER = "switchboard-busy-models"


def route_headers(reservation: Reservation, route_reason: str) -> dict[str, str]:
    return {
        "switchboard-turn-id": reservation.key.turn_id,
        "switchboard-model": reservation.model_id,
        "switchboard-routed-model": reservation.routed_model,
        "switchboard-route-reason": quote(route_reason, safe=" ,;:()/+-.'"),
        "switchboard-reserved-credits": _credits_text(reservation.reserved_h),
    }


def charge_info(reservation: Reservation, route_reason: str, settlement: Settlement) -> dict[str, Any]:
    return {
        "turn_id": reservation.key.turn_id,
        "model_id": reservation.model_id,
        "routed_model": reservation.routed_model,
        "route_reason": route_reason,
        "status": settlement.status,
        "credits": _credits(settlement.credits_h),
        "overage_credits": _credits(settlement.overage_h),
    }


# Every turn's headers and charge: integer arithmetic, the very figures `from_hundredths` gives (0.03 µs
# against 2 µs; an int divided by an int is correctly rounded, as a Decimal's float is).
def _credits(hundredths: int) -> float:
    return hundredths / 100


def _credits_text(hundredths: int) -> str:
    if hundredths < 0:
        return str(from_hundredths(hundredths))
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def answer_with_charge(content: bytes, message: dict[str, Any], info: dict[str, Any]) -> bytes:
    """A non-streaming answer (`content`, read as `message`) with `info` as its `switchboard` object.

    The upstream bytes are kept and the object written before their closing brace: re-encoding the whole
    answer cost more than anything else done with it. That needs a plain UTF-8 object with keys and no
    `switchboard` key of its own; any other answer is re-encoded from `message`, the object set in it."""
    body = content.strip(b" \t\r\n")
    if message and "switchboard" not in message and body.startswith(b"{") and body.endswith(b"}"):
        return body[:-1] + b',"switchboard":' + _encode(info) + b"}"
    return _encode({**message, "switchboard": info})


def _encode(value: dict[str, Any]) -> bytes:
    """As Starlette's JSONResponse encodes."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
