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

    for message_type in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(message_type, keep_raw)
    return converter
