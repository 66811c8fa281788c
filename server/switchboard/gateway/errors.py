"""Refusals in Anthropic's error JSON, with statuses the `anthropic` SDK does not retry.

The SDK retries 408, 409, 429 and 5xx (unless `x-should-retry: false`), so a final "no" uses another status
and also says `x-should-retry: false`. The `type` names the reason; the language server maps
`authentication_error` to 1004, `plan_forbids_model` to 1001 and `credits_exhausted` to 1002
(docs/gateway.md has the whole table).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def sdk_retries(status: int) -> bool:
    """The `anthropic` SDK retries this status (when no `x-should-retry` says otherwise)."""
    return status in (408, 409, 429) or status >= 500


class GatewayRefusal(Exception):
    """A request the gateway answers with an error and does not forward."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        retry: bool = False,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message
        self.retry, self.details, self.headers = retry, details or {}, headers or {}

    def response(self) -> JSONResponse:
        return error_response(
            self.status,
            self.error_type,
            self.message,
            retry=self.retry,
            details=self.details,
            headers=self.headers,
        )


def error_body(error_type: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message, **(details or {})}}


def error_response(
    status: int,
    error_type: str,
    message: str,
    *,
    retry: bool = False,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    all_headers = {"x-should-retry": "true" if retry else "false", **(headers or {})}
    return JSONResponse(error_body(error_type, message, details), status_code=status, headers=all_headers)


def invalid_request(message: str, **details: Any) -> GatewayRefusal:
    return GatewayRefusal(400, "invalid_request_error", message, details=details)


def unauthenticated(message: str) -> GatewayRefusal:
    return GatewayRefusal(401, "authentication_error", message, headers={"www-authenticate": "Bearer"})
