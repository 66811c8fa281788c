"""Switchboard's JSON-RPC errors: one exception per error code, each with its typed `data`."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pygls.exceptions import JsonRpcException

from .messages import (
    AuthErrorData,
    CreditsExhaustedData,
    InternalErrorData,
    InvalidParamsData,
    NotFoundData,
    PlanForbidsData,
    PromptTooLargeData,
    UpstreamErrorData,
    Wire,
)


class ErrorCode(IntEnum):
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    REQUEST_CANCELLED = -32800
    PLAN_FORBIDS_MODEL = 1001
    CREDITS_EXHAUSTED = 1002
    UPSTREAM_FAILED = 1003
    AUTH_REQUIRED = 1004
    CONVERSATION_NOT_FOUND = 1005
    PROMPT_TOO_LARGE = 1006


class SwitchboardError(JsonRpcException):
    """A JSON-RPC error with a human-readable message and a typed `data` object."""

    code: int = -32603

    def __init__(self, message: str, data: Wire | None = None) -> None:
        super().__init__(code=self.code, message=message, data=self._dump(data))
        self.payload = data

    @staticmethod
    def _dump(data: Wire | None) -> dict[str, Any]:
        return data.model_dump(mode="json", by_alias=True) if data is not None else {}


class InvalidParams(SwitchboardError):
    code = ErrorCode.INVALID_PARAMS

    def __init__(self, message: str, data: InvalidParamsData | None = None) -> None:
        super().__init__(message, data or InvalidParamsData())


class PlanForbidsModel(SwitchboardError):
    code = ErrorCode.PLAN_FORBIDS_MODEL

    def __init__(self, message: str, data: PlanForbidsData) -> None:
        super().__init__(message, data)


class CreditsExhausted(SwitchboardError):
    code = ErrorCode.CREDITS_EXHAUSTED

    def __init__(self, message: str, data: CreditsExhaustedData) -> None:
        super().__init__(message, data)


class UpstreamFailed(SwitchboardError):
    code = ErrorCode.UPSTREAM_FAILED

    def __init__(self, message: str, data: UpstreamErrorData) -> None:
        super().__init__(message, data)


class AuthRequired(SwitchboardError):
    code = ErrorCode.AUTH_REQUIRED

    def __init__(self, message: str, data: AuthErrorData) -> None:
        super().__init__(message, data)


class ConversationNotFound(SwitchboardError):
    code = ErrorCode.CONVERSATION_NOT_FOUND

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"No conversation {conversation_id!r} in this workspace.",
            NotFoundData(conversation_id=conversation_id),
        )


class PromptTooLarge(SwitchboardError):
    code = ErrorCode.PROMPT_TOO_LARGE

    def __init__(self, message: str, data: PromptTooLargeData) -> None:
        super().__init__(message, data)


class InternalError(SwitchboardError):
    """A bug or an environment fault (a corrupt database, a full disk): the client gets a reference, the
    server log gets the traceback. Never the traceback itself, which would carry paths and local values."""

    code = ErrorCode.INTERNAL_ERROR

    def __init__(self, reference: str) -> None:
        super().__init__(
            f"Switchboard failed to handle this request (reference {reference}; "
            "the server log has the details).",
            InternalErrorData(reference=reference),
        )
