"""The OAuth endpoints: server metadata (RFC 8414), device authorization (RFC 8628), token, revocation
(RFC 7009). Paths are the defaults of the hosted contract; clients discover them from the metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import Gateway
from . import device, ratelimit, refresh
from .clients import is_known_client
from .codes import display_user_code
from .forms import NO_STORE, FormError, OAuthError, client_address, read_form
from .grants import device_code_grant, refresh_token_grant
from .scopes import SCOPES, parse_scope, scope_text

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_TOKEN_GRANT = "refresh_token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
DEVICE_AUTHORIZATION_PATH = "/oauth/device_authorization"
TOKEN_PATH = "/oauth/token"
REVOCATION_PATH = "/oauth/revoke"
DEVICE_PAGE_PATH = "/device"
ACCOUNT_PAGE_PATH = "/account"
UPGRADE_PAGE_PATH = "/account/upgrade"

Handler = Callable[[Request], Awaitable[Response]]


def server_metadata(issuer: str, base: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "device_authorization_endpoint": base + DEVICE_AUTHORIZATION_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "revocation_endpoint": base + REVOCATION_PATH,
        "jwks_uri": base + "/.well-known/jwks.json",
        "response_types_supported": [],  # required by RFC 8414; there is no authorization endpoint
        "grant_types_supported": [DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(SCOPES),
        "switchboard_account_uri": base + ACCOUNT_PAGE_PATH,
        "switchboard_upgrade_uri": base + UPGRADE_PAGE_PATH,
    }


async def metadata(request: Request) -> Response:
    settings = _gateway(request).settings
    document = server_metadata(settings.token_issuer, settings.public_base_url)
    return JSONResponse(document, headers={"cache-control": "public, max-age=300"})


def oauth_endpoint(handler: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Handler:
    """Reads the form and turns `OAuthError` into its JSON answer, noting the error for the access log."""

    async def endpoint(request: Request) -> Response:
        try:
            try:
                form = await read_form(request)
            except FormError as error:
                raise OAuthError("invalid_request", str(error)) from None
            return await handler(request, form)
        except OAuthError as error:
            request.state.oauth_error = error.error
            return error.response()

    return endpoint


def _client_id(request: Request, form: dict[str, str]) -> str:
    """The form's `client_id`, one of the public clients; raises 401 `invalid_client`."""
    client_id = form.get("client_id")
    if client_id is None or not is_known_client(client_id):
        raise OAuthError("invalid_client", "Unknown client_id.", status=401)
    request.state.oauth_client = client_id
    return client_id


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"The {name} parameter is required.")
    return value


async def _limit_address(gateway: Gateway, rule: ratelimit.Rule, request: Request) -> None:
    async with gateway.pool.connection() as conn:
        try:
            await ratelimit.hit(conn, rule, ratelimit.address_key(client_address(request)))
        except ratelimit.RateLimited as limited:
            raise OAuthError.rate_limited(limited) from None


async def _device_authorization(request: Request, form: dict[str, str]) -> Response:
    gateway = _gateway(request)
    client_id = _client_id(request, form)
    scope = scope_text(parse_scope(form.get("scope")))
    rules = ratelimit.rules_for(gateway.settings.rate_limits)
    await _limit_address(gateway, rules.device_authorization_per_address, request)
    settings = gateway.settings
    async with gateway.pool.connection() as conn:
        started = await device.start(
            conn, client_id, scope, settings.device_code_seconds, settings.device_poll_interval_seconds
        )
    user_code = display_user_code(started.user_code)
    verification_uri = settings.public_base_url + DEVICE_PAGE_PATH
    body = {
        "device_code": started.device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={user_code}",
        "expires_in": started.expires_in,
        "interval": started.interval,
    }
    return JSONResponse(body, headers=NO_STORE)


async def _token(request: Request, form: dict[str, str]) -> Response:
    gateway = _gateway(request)
    rules = ratelimit.rules_for(gateway.settings.rate_limits)
    await _limit_address(gateway, rules.token_per_address, request)
    grant_type = _required(form, "grant_type")
    request.state.grant = grant_type
    client_id = _client_id(request, form)
    if grant_type == DEVICE_CODE_GRANT:
        issued = await device_code_grant(gateway, _required(form, "device_code"), client_id)
    elif grant_type == REFRESH_TOKEN_GRANT:
        issued = await refresh_token_grant(
            gateway, _required(form, "refresh_token"), client_id, form.get("scope"), client_address(request)
        )
    else:
        raise OAuthError("unsupported_grant_type", "Use the device_code or refresh_token grant.")
    request.state.account = issued.account.id
    return JSONResponse(issued.response_body(), headers=NO_STORE)


async def _revoke(request: Request, form: dict[str, str]) -> Response:
    gateway = _gateway(request)
    if "client_id" in form:  # optional here (RFC 7009 public clients), but never an unknown one
        _client_id(request, form)
    token = _required(form, "token")
    # Any token is accepted and the answer is always 200 (RFC 7009 §2.2): an access token, or one that is
    # not ours, is simply not a refresh token; an access token dies on its own within minutes.
    async with gateway.pool.connection() as conn:
        found = await refresh.revoke_token(conn, token)
    if found is not None:
        request.state.account = found.account_id
    return Response(status_code=200, headers=NO_STORE)


device_authorization = oauth_endpoint(_device_authorization)
token = oauth_endpoint(_token)
revoke = oauth_endpoint(_revoke)


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway
