"""pygls wiring shared by the server and the terminal client.

pygls turns the params and results of methods it does not know into namedtuples. Switchboard's own
methods are validated by pydantic instead, so this converter keeps them as plain JSON values.
"""

from __future__ import annotations

from typing import Any

from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    default_converter,
)


def raw_json_converter() -> Any:
    converter = default_converter()

    def keep_raw(obj: dict[str, Any], cls: type) -> Any:
        return cls(**obj)

    def keep_raw_params(obj: dict[str, Any], cls: type) -> Any:
        # `params` may be omitted (JSON-RPC 2.0, §4.2): the handler then sees None, not a dropped message.
        return cls(**{"params": None, **obj})

    converter.register_structure_hook(JsonRPCRequestMessage, keep_raw_params)
    converter.register_structure_hook(JsonRPCNotification, keep_raw_params)
    converter.register_structure_hook(JsonRPCResponseMessage, keep_raw)
    return converter
