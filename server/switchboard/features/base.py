"""Typed request registration: params validated by pydantic in, results serialized out."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from switchboard.protocol.errors import InvalidParams
from switchboard.protocol.messages import InvalidParamsData, Wire
from switchboard.protocol.methods import Request

from .feature import Feature, plain
from .host import Editor

__all__ = ["Feature", "dump", "parse_params", "plain", "register_request"]

P = TypeVar("P", bound=Wire)
Handler = Callable[[P], Awaitable[Wire] | Wire]


def parse_params(model: type[P], raw: Any) -> P:
    """Validates raw JSON params into the method's pydantic model, or raises `-32602` saying what is wrong."""
    if raw is None or raw == []:
        # No params, `null` and `[]` all mean "no params": Neovim encodes an empty Lua table as `[]`.
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParams(
            f"Params must be a JSON object, not {type(raw).__name__}.",
            InvalidParamsData(errors=["params: expected an object"]),
        )
    if _has_lone_surrogate(raw):
        raise InvalidParams(
            "Params contain invalid Unicode (a lone surrogate).",
            InvalidParamsData(errors=["params: invalid Unicode"]),
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False, include_input=False)]
        raise InvalidParams(
            "Invalid params: " + "; ".join(problems[:5]), InvalidParamsData(errors=problems)
        ) from None


def _has_lone_surrogate(raw: dict[str, Any]) -> bool:
    """Such strings parse from JSON escapes but cannot be stored or sent back: refuse them up front."""
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "params"
    return f"{location}: {error['msg']}"


def dump(result: Wire) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True)


def register_request(editor: Editor, request: Request, handler: Handler[Any]) -> None:
    """Registers `handler` for `request.method`: params validated in, the result serialized out."""

    async def handle(raw: Any) -> dict[str, Any]:
        params = parse_params(request.params, raw)
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        return dump(result)

    handle.__name__ = "handle_" + request.method.replace("/", "_")
    editor.feature(request.method)(handle)
