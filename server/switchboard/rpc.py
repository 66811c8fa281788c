"""pygls wiring shared by the server and the terminal client.

pygls turns the params and results of methods it does not know into namedtuples. Switchboard's own
methods are validated by pydantic instead, so this converter keeps them as plain JSON values.

pygls answers an unexpected exception with `-32603` and the traceback in `data`; `SwitchboardProtocol`
sends a reference instead and leaves the traceback in the server log.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from lsprotocol.types import ResponseError
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
)

from switchboard.protocol.errors import ErrorCode, InternalError

log = logging.getLogger(__name__)


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


class SwitchboardProtocol(LanguageServerProtocol):
    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: ResponseError | None = None
    ) -> None:
        if error is not None and error.code == ErrorCode.INTERNAL_ERROR and _is_traceback(error.data):
            # pygls has just logged the exception with its traceback; this ties it to the reference.
            error = internal_error(msg_id, error.message).to_response_error()
        super()._send_response(msg_id, result=result, error=error)


def internal_error(msg_id: Any, cause: str) -> InternalError:
    """The `-32603` answer to request `msg_id`: a new reference for the client, logged with `cause`."""
    reference = secrets.token_hex(4)
    log.error("internal error %s answered to request %r: %s", reference, msg_id, cause)
    return InternalError(reference)


def _is_traceback(data: Any) -> bool:
    return isinstance(data, dict) and "traceback" in data
