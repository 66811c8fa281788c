"""The gateway's HTTP endpoints other than `/v1/messages` (which the `anthropic` SDK calls): RFC 8414
metadata, the device and token endpoints (RFC 8628, RFC 6749 refresh), revocation (RFC 7009), the JWKS,
and the usage and overage endpoints.

Endpoints are discovered from the metadata, never built from hard-coded paths. Nothing here logs a token;
every failure is one of three exceptions whose message is safe to show a user.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2

from switchboard.protocol.messages import UsageReport
from switchboard.providers.anthropic_api import should_retry

log = logging.getLogger(__name__)

METADATA_PATH = "/.well-known/oauth-authorization-server"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT_SECONDS = 15.0
# What the language server does with a sign-in: chat (and read usage), and change overage (docs/gateway.md).
SCOPE = "chat billing"


class GatewayUnreachable(Exception):
    """No answer, or an answer that is not what the endpoint promises."""


def tls_failure(error: BaseException) -> str | None:
    """Why the TLS handshake failed, when that is what the connection error `error` (httpx's, or the SDK's
    wrapping it) comes from: a certificate not trusted, or a peer that does not speak TLS at all."""
    cause: BaseException | None = error
    for _ in range(8):  # the chain is short (SDK → httpx → httpcore → ssl); never follow a loop
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"certificate: {cause.verify_message}" if cause.verify_message else "certificate not verified"
            )
        if isinstance(cause, ssl.SSLError):
            return (cause.reason or str(cause)).replace("_", " ").lower()
        cause = cause.__cause__ or cause.__context__
    return None


def tls_failed(where: str, reason: str) -> str:
    """The message for a TLS handshake with the gateway (`where`: the gateway, as the user knows it) that
    failed for `reason` (`tls_failure`): not the same as nothing listening."""
    return (
        f"{where}: the TLS handshake failed: the gateway may not speak HTTPS at this address, or its "
        f"certificate is not trusted ({reason})."
    )


class OAuthError(Exception):
    """An OAuth error answer (`error` is the RFC's code: authorization_pending, invalid_grant, …)."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        super().__init__(description or error)
        self.error = error
        self.status = status


class GatewayRefused(Exception):
    """An Anthropic-style error answer from a `/v1/…` endpoint; `should_retry`: its `x-should-retry`."""

    def __init__(self, status: int, type: str, message: str, should_retry: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.should_retry = should_retry


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    device_authorization: str
    token: str
    revocation: str
    jwks: str
    account: str | None
    upgrade: str | None


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int


class GatewayHttp:
    def __init__(self, base_url: str, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx2.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport
        )

    async def close(self) -> None:
        await self._client.aclose()

    # --- discovery ----------------------------------------------------------------------------------

    async def endpoints(self) -> Endpoints:
        document = await self._json("GET", self.base_url + METADATA_PATH)
        try:
            return Endpoints(
                issuer=_text(document, "issuer"),
                device_authorization=_text(document, "device_authorization_endpoint"),
                token=_text(document, "token_endpoint"),
                revocation=_text(document, "revocation_endpoint"),
                jwks=_text(document, "jwks_uri"),
                account=_optional_text(document, "switchboard_account_uri"),
                upgrade=_optional_text(document, "switchboard_upgrade_uri"),
            )
        except ValueError as missing:
            raise GatewayUnreachable(f"The gateway's sign-in metadata is incomplete ({missing}).") from None

    async def jwks(self, endpoints: Endpoints) -> dict[str, Any]:
        return await self._json("GET", endpoints.jwks)

    # --- OAuth ----------------------------------------------------------------------------------------

    async def device_code(self, endpoints: Endpoints, client_id: str) -> DeviceCode:
        form = {"client_id": client_id, "scope": SCOPE}
        answer = await self._oauth(endpoints.device_authorization, form)
        try:
            code = DeviceCode(
                device_code=_text(answer, "device_code"),
                user_code=_text(answer, "user_code"),
                verification_uri=_text(answer, "verification_uri"),
                verification_uri_complete=_optional_text(answer, "verification_uri_complete"),
                expires_in=_int(answer, "expires_in", 600),
                interval=_int(answer, "interval", 5),
            )
        except ValueError as missing:
            raise GatewayUnreachable(f"The gateway's device code answer is incomplete ({missing}).") from None
        # Clients open these in a browser (VS Code) or print them to follow: only a web page will do, never
        # a `command:`, `file:` or scheme-less link.
        for name, link in (
            ("verification_uri", code.verification_uri),
            ("verification_uri_complete", code.verification_uri_complete),
        ):
            if link is not None and not _web_link(link):
                raise GatewayUnreachable(
                    f"The gateway's device code answer has a {name} that is not an http(s) link; "
                    "not signing in there."
                )
        return code

    async def poll_device(self, endpoints: Endpoints, client_id: str, device_code: str) -> TokenGrant:
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
        return _grant(await self._oauth(endpoints.token, form))

    async def refresh(self, endpoints: Endpoints, client_id: str, refresh_token: str) -> TokenGrant:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        return _grant(await self._oauth(endpoints.token, form))

    async def revoke(self, endpoints: Endpoints, client_id: str, refresh_token: str) -> None:
        form = {"token": refresh_token, "token_type_hint": "refresh_token", "client_id": client_id}
        await self._oauth(endpoints.revocation, form, expect_json=False)

    # --- usage ----------------------------------------------------------------------------------------

    async def usage(self, access_token: str) -> UsageReport:
        body = await self._api("GET", "/v1/switchboard/usage", access_token)
        return UsageReport.model_validate(body)

    async def set_overage(self, access_token: str, enabled: bool, budget_usd: float | None) -> UsageReport:
        payload: dict[str, Any] = {"enabled": enabled, "budgetUsd": budget_usd}
        body = await self._api("POST", "/v1/switchboard/overage", access_token, payload)
        return UsageReport.model_validate(body)

    async def turn_charge(self, access_token: str, turn_id: str) -> dict[str, Any] | None:
        """The gateway's `switchboard` object for one of the account's turns; None while it has none."""
        path = "/v1/switchboard/turns/" + quote(turn_id, safe="")
        headers = {"Authorization": f"Bearer {access_token}"}
        response = await self._send("GET", self.base_url + path, headers=headers)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _refusal(response)
        block = _object(response).get("switchboard")
        return block if isinstance(block, dict) else None

    # --- plumbing -------------------------------------------------------------------------------------

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx2.HTTPError as error:
            where = f"Switchboard Cloud at {self.base_url}"
            if (reason := tls_failure(error)) is not None:
                raise GatewayUnreachable(tls_failed(where, reason)) from None
            raise GatewayUnreachable(f"{where} did not answer ({type(error).__name__}).") from None

    async def _json(self, method: str, url: str) -> dict[str, Any]:
        response = await self._send(method, url)
        if response.status_code != 200:
            raise GatewayUnreachable(f"Switchboard Cloud answered HTTP {response.status_code} for {url}.")
        return _object(response)

    async def _oauth(self, url: str, form: dict[str, str], *, expect_json: bool = True) -> dict[str, Any]:
        response = await self._send("POST", url, data=form)
        if response.status_code == 200:
            return _object(response) if expect_json else {}
        try:
            body = _object(response)
        except GatewayUnreachable:
            body = {}
        error = body.get("error")
        if not isinstance(error, str):
            raise GatewayUnreachable(f"Switchboard Cloud answered HTTP {response.status_code} at {url}.")
        description = body.get("error_description")
        raise OAuthError(error, description if isinstance(description, str) else None, response.status_code)

    async def _api(
        self, method: str, path: str, access_token: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}"}
        response = await self._send(method, self.base_url + path, headers=headers, json=payload)
        if response.status_code == 200:
            return _object(response)
        raise _refusal(response)


def _refusal(response: httpx2.Response) -> GatewayRefused:
    try:
        error = _object(response).get("error")
    except GatewayUnreachable:
        error = None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        if isinstance(kind, str) and isinstance(message, str):
            return GatewayRefused(response.status_code, kind, message, should_retry(response.headers))
    return GatewayRefused(
        response.status_code,
        "api_error",
        f"Switchboard Cloud answered HTTP {response.status_code}.",
        should_retry(response.headers),
    )


def _object(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise GatewayUnreachable("Switchboard Cloud sent an answer that is not JSON.") from None
    if not isinstance(body, dict):
        raise GatewayUnreachable("Switchboard Cloud sent an answer that is not a JSON object.")
    return body


def _grant(answer: dict[str, Any]) -> TokenGrant:
    try:
        return TokenGrant(
            access_token=_text(answer, "access_token"),
            refresh_token=_text(answer, "refresh_token"),
            expires_in=_int(answer, "expires_in", 900),
        )
    except ValueError as missing:
        raise GatewayUnreachable(f"The gateway's token answer is incomplete ({missing}).") from None


def _web_link(link: str) -> bool:
    """An absolute http(s) URL with a host."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value else None


def _int(document: dict[str, Any], name: str, default: int) -> int:
    value = document.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(name)
    return value
