"""One request being answered: what arrived, the shared state, and the handler to answer on."""

from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from switchboard.fakeapi.errors import ApiError
from switchboard.fakeapi.state import FakeState


@dataclass
class Exchange:
    handler: BaseHTTPRequestHandler
    state: FakeState
    method: str
    path: str
    headers: dict[str, str]
    body: object  # the parsed JSON body, or None
    request_id: str

    def response_headers(self) -> dict[str, str]:
        return {"request-id": self.request_id}

    def authenticate(self) -> None:
        """Accept `x-api-key: KEY` or `Authorization: Bearer KEY` (the SDK sends the latter)."""
        supplied = [key for key in (self.headers.get("x-api-key"), _bearer(self.headers)) if key]
        if not supplied:
            raise ApiError(401, "x-api-key header is required (or send Authorization: Bearer <key>)")
        expected = self.state.api_key
        if expected is not None and expected not in supplied:
            raise ApiError(401, "invalid x-api-key")


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
