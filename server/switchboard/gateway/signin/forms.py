"""What the sign-in endpoints share: form bodies, OAuth error answers, the client's address.

OAuth requests are `application/x-www-form-urlencoded` (RFC 6749 §3.2), which the standard library parses;
Starlette's `request.form()` would need the python-multipart package for no gain here.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from .ratelimit import RateLimited

FORM_LIMIT_BYTES = 16 * 1024
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class FormError(Exception):
    """The body is not a form we can read; `str()` says why."""


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer: `{"error": …, "error_description": …}`."""

    def __init__(self, error: str, description: str, *, status: int = 400, retry_after: int | None = None):
        super().__init__(description)
        self.error, self.description, self.status, self.retry_after = error, description, status, retry_after

    @classmethod
    def rate_limited(cls, limited: RateLimited) -> OAuthError:
        description = f"Too many requests: wait {limited.retry_after} seconds."
        return cls("slow_down", description, status=429, retry_after=limited.retry_after)

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=headers)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict; raises `FormError` (wrong type, too large, a parameter twice)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError("send the parameters as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT_BYTES:
            raise FormError(f"the form is larger than {FORM_LIMIT_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form is not valid UTF-8 urlencoded text") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.1: a parameter must not be sent more than once
            raise FormError(f"the parameter {name!r} is sent more than once")
        form[name] = value
    return form


def plain_text(value: str) -> bool:
    """Whether a form value has no control character. A value that does names nothing (no email, account or
    sign-in id has one), and must not reach PostgreSQL: its text cannot hold NUL, and psycopg's DataError is
    an error of the request, not an outage of the database."""
    return not any(unicodedata.category(char) in ("Cc", "Cs") for char in value)


def client_address(request: Request) -> str:
    """The client's address: the direct peer, or what a trusted proxy said (see `proxies`)."""
    return request.client.host if request.client else "unknown"
