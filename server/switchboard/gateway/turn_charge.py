"""`GET /v1/switchboard/turns/{turn_id}`: one of the account's own turns, as the ledger holds it.

A turn cut by the client (the user pressed Stop) ends its stream before the `message_delta` that would
carry the charge, so the language server asks here for the gateway's figure once the turn is settled.
The answer is the same `switchboard` object a stream ends with; `status` is `reserved` while the turn is
still in flight (ask again), then `complete`, `cut` or `failed`. Another account's turn id is 404, like one
that never existed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from switchboard.plans.credits import from_hundredths

from .accounts import Account
from .errors import error_response
from .service import Gateway, account_endpoint

TURN_PATH = "/v1/switchboard/turns/{turn_id}"
MAX_TURN_ID_LENGTH = 200


@account_endpoint()
async def turn_charge_endpoint(request: Request, gateway: Gateway, account: Account) -> Response:
    turn_id = str(request.path_params["turn_id"])
    if not turn_id or len(turn_id) > MAX_TURN_ID_LENGTH:
        return error_response(400, "invalid_request_error", "That is not a turn id.")
    async with gateway.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT turn_id, model_id, routed_model, route_reason, status, credits_h, overage_h "
            "FROM turns WHERE account_id = %s AND turn_id = %s",
            (account.id, turn_id),
        )
        turn = await cursor.fetchone()
    if turn is None:
        return error_response(404, "not_found_error", "This account has no turn with that id.")
    charge = {
        "turn_id": turn["turn_id"],
        "model_id": turn["model_id"],
        "routed_model": turn["routed_model"],
        "route_reason": turn["route_reason"],
        "status": turn["status"],
        "credits": float(from_hundredths(turn["credits_h"])),
        "overage_credits": float(from_hundredths(turn["overage_h"])),
    }
    return JSONResponse({"switchboard": charge})
