"""One request being answered: what arrived, the shared state, and the response being built."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from switchboard.fakeapi.errors import ApiError
from switchboard.fakeapi.state import FakeState
from switchboard.fakeapi.transport import Response, parse_json


@dataclass
class Exchange:
    state: FakeState
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    request_id: str
    response: Response = field(default_factory=Response)

    @functools.cached_property
    def body(self) -> object:
        """The parsed JSON body, or None (parsed when asked for: /v1/messages works from the raw bytes)."""
        return parse_json(self.raw_body)

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
