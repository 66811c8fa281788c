"""Export the protocol as one JSON Schema document (the input of the TypeScript generator)."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from . import messages as m
from .errors import ErrorCode
from .methods import CLIENT_NOTIFICATIONS, NOTIFICATIONS, PROGRESS_VALUES, REQUESTS


def _all_models() -> list[type[m.Wire]]:
    seen: dict[str, type[m.Wire]] = {}
    for req in REQUESTS:
        seen.setdefault(req.params.__name__, req.params)
        seen.setdefault(req.result.__name__, req.result)
    for note in (*NOTIFICATIONS, *CLIENT_NOTIFICATIONS):
        seen.setdefault(note.params.__name__, note.params)
    for value in PROGRESS_VALUES:
        seen.setdefault(value.__name__, value)
    for name in dir(m):
        obj = getattr(m, name)
        if isinstance(obj, type) and issubclass(obj, m.Wire) and obj is not m.Wire:
            seen.setdefault(obj.__name__, obj)
    return [seen[k] for k in sorted(seen)]


def protocol_schema() -> dict[str, Any]:
    # Params are read leniently (defaults make fields optional); everything the server sends always
    # carries every field, so results are described in serialization mode.
    inputs = {r.params for r in REQUESTS} | {n.params for n in CLIENT_NOTIFICATIONS}
    _, defs = models_json_schema(
        [(model, "validation" if model in inputs else "serialization") for model in _all_models()],
        ref_template="#/$defs/{model}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Switchboard protocol",
        "$defs": defs["$defs"],
        "x-requests": {
            r.method: {"params": r.params.__name__, "result": r.result.__name__, "doc": r.doc}
            for r in REQUESTS
        },
        "x-notifications": {n.method: {"params": n.params.__name__, "doc": n.doc} for n in NOTIFICATIONS},
        "x-client-notifications": {
            n.method: {"params": n.params.__name__, "doc": n.doc} for n in CLIENT_NOTIFICATIONS
        },
        "x-progress": [v.__name__ for v in PROGRESS_VALUES],
        "x-error-codes": {code.name: int(code) for code in ErrorCode},
    }


def render() -> str:
    return json.dumps(protocol_schema(), indent=2, sort_keys=True) + "\n"
