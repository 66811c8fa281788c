"""What a `POST /v1/messages` asks for: the turn id, the Switchboard model, and the Anthropic body.

The turn id (`Switchboard-Turn-Id`) is the idempotency key, scoped to the account. The model header
(`Switchboard-Model`) names what the user chose and what the turn is billed as; for a concrete model the
body's `model` must name the same model (its Switchboard id or its Anthropic id), for Auto it is ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from switchboard.catalog.models import CATALOG, ModelSpec, get_model, is_known_model

from .errors import GatewayRefusal, invalid_request

TURN_ID_HEADER = "switchboard-turn-id"
MODEL_HEADER = "switchboard-model"
_TURN_ID = re.compile(r"[A-Za-z0-9._:\-]{1,200}")
# Headers passed through to Anthropic; everything else (the client's token above all) stays here.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


@dataclass(frozen=True)
class TurnRequest:
    turn_id: str
    model: ModelSpec  # what the user chose (Auto or a concrete model)
    body: dict[str, Any]
    max_tokens: int

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


def parse_turn(headers: Headers, raw_body: bytes) -> TurnRequest:
    """The turn a request asks for; raises `GatewayRefusal` (400) when it is not well formed."""
    turn_id = headers.get(TURN_ID_HEADER, "")
    if not _TURN_ID.fullmatch(turn_id):
        raise invalid_request(
            f"Send a turn id in the {_title(TURN_ID_HEADER)} header: 1 to 200 letters, digits or ._:-"
        )
    model_id = headers.get(MODEL_HEADER, "")
    if not is_known_model(model_id):
        known = ", ".join(CATALOG)
        raise invalid_request(f"Send the Switchboard model in the {_title(MODEL_HEADER)} header ({known}).")
    body = _json_object(raw_body)
    model = get_model(model_id)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid_request("max_tokens: a positive integer is required")
    if max_tokens > model.max_output_tokens:
        raise invalid_request(
            f"max_tokens: {model.name} answers with at most {model.max_output_tokens} tokens"
        )
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise invalid_request("messages: a non-empty list is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid_request("stream: must be true or false")
    if model.id != "auto":
        _require_same_model(model, body.get("model"))
    return TurnRequest(turn_id, model, body, max_tokens)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def _require_same_model(model: ModelSpec, body_model: object) -> None:
    if body_model in (model.id, model.anthropic_model, model.default_anthropic_model):
        return
    shown = body_model if isinstance(body_model, str) and len(body_model) <= 100 else "another model"
    raise GatewayRefusal(
        400,
        "model_mismatch",
        f"The {_title(MODEL_HEADER)} header says {model.id} but the body asks for {shown!s}: "
        "they must name the same model.",
        details={"model_id": model.id},
    )


def _title(header: str) -> str:
    return "-".join(part.capitalize() for part in header.split("-"))
