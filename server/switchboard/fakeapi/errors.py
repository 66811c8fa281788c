"""Anthropic-shaped API errors: the exception the endpoints raise and the JSON body it becomes."""

from __future__ import annotations

from collections.abc import Mapping

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request (simulated fault)",
    401: "invalid x-api-key (simulated fault)",
    402: "Your credit balance is too low to access the Anthropic API (simulated fault)",
    403: "Your API key does not have permission to use the specified resource (simulated fault)",
    404: "The requested resource could not be found (simulated fault)",
    413: "Request exceeds the maximum allowed number of bytes (simulated fault)",
    429: "Number of request tokens has exceeded your per-minute rate limit (simulated fault)",
    500: "Internal server error (simulated fault)",
    529: "Overloaded (simulated fault)",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(error_type: str, message: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


class ApiError(Exception):
    """An error response: raised anywhere while handling a request, written by the handler."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def error_type(self) -> str:
        return error_type_for(self.status)

    def body(self) -> dict[str, object]:
        return error_body(self.error_type, self.message)


def invalid(message: str) -> ApiError:
    return ApiError(400, message)
