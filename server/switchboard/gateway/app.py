"""The ASGI application: routes, the replica's lifetime (pool, upstream client, reaper), and logging."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncGenerator

import psycopg
from psycopg.errors import ReadOnlySqlTransaction
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from .accesslog import AccessLog
from .config import GatewaySettings
from .db import UNREACHABLE, LedgerUnavailable, ReadinessProbe, ledger_ready, open_ledger_pool, open_pool
from .errors import error_response
from .liveness import beat_forever
from .messages import create_message
from .reaper import reap_forever
from .service import Gateway
from .shutdown import Shutdown
from .signin import endpoints as oauth
from .signin.account_pages import account_page
from .signin.housekeeping import sweep_forever
from .signin.pages import device_page
from .signin.proxies import trusted_proxy_middleware
from .tokens import TokenAuthority
from .turn_charge import TURN_PATH, turn_charge_endpoint
from .upstream import Upstream
from .usage import overage_endpoint, usage_endpoint

log = logging.getLogger("switchboard.gateway")
GC_YOUNG_THRESHOLD = 10_000
# Raised when PostgreSQL cannot be reached or cannot answer in time: a retryable 503. Only errors of
# availability: a connection refused, lost or closed (OperationalError, which includes PostgreSQL's shutdown,
# "starting up", too many connections, a cancelled statement and a deadlock or serialization failure to
# retry; InterfaceError), no connection within the pool's timeout (PoolTimeout), a standby that refuses
# writes during a failover, and the ledger's asyncpg errors (LedgerUnavailable, db.py). Any other
# psycopg.Error (DataError from a value PostgreSQL cannot hold, an IntegrityError) is a bug or a bad request
# to be fixed where it happens: it is a 500 with a reference, never a 503 that blames the database.
LEDGER_ERRORS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ReadOnlySqlTransaction,
    PoolTimeout,
    LedgerUnavailable,
)
MESSAGES_PATH = "/v1/messages"


class TurnRoute:
    """`POST /v1/messages` straight to `create_message`, in front of Starlette's router.

    Every turn skips the router and Starlette's inner exception layer, and each event of a stream passes
    two `send` wrappers instead of four (Starlette's outer error layer and the access log's). What the
    handler raises is answered as the app's exception handlers answer it for every other route: the
    ledger's errors here, anything else by Starlette's outermost layer (a 500 with a reference)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != MESSAGES_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await create_message(request)
        except LEDGER_ERRORS as error:
            response = await ledger_unavailable(request, error)
        await response(scope, receive, send)


async def ledger_unavailable(_: Request, error: Exception) -> Response:
    log.warning("PostgreSQL unavailable: %s", unavailable_reason(error))
    message = "The gateway's ledger is unavailable for a moment; retry shortly."
    return error_response(503, "api_error", message, retry=True)


def unavailable_reason(error: Exception) -> str:
    """What the log says of a ledger error: `LedgerUnavailable`'s own message (db.unavailable: the error's
    name, or what a schema that does not match this release calls for), else the error's name. Never the
    message of a psycopg or pool error, which can hold a connection string."""
    if isinstance(error, LedgerUnavailable) and str(error):
        return str(error)
    return type(error.__cause__ or error).__name__


def create_app(settings: GatewaySettings, shutdown: Shutdown | None = None) -> Starlette:
    """The app; `shutdown` says when the replica has been asked to stop (/readyz then answers 503)."""
    stopping = shutdown or Shutdown()
    probe = ReadinessProbe(settings.database_url.get_secret_value())
    authority = TokenAuthority.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None]:
        pool = await open_pool(settings)
        ledger_pool = await open_ledger_pool(settings)
        upstream = Upstream(settings)
        gateway = Gateway(settings, (pool, ledger_pool), upstream, authority)
        app.state.gateway = gateway
        gateway.auto.warm_up()
        # What start-up loaded (modules, the router's artifact) lives as long as the replica: moved out of
        # the collector's reach, full collections stay short (they were tail-latency spikes).
        gc.collect()
        gc.freeze()
        # A turn's objects are nearly all freed by reference counting, yet at the default threshold (700
        # allocations) the collector ran every few turns and took about 6% of a replica's CPU under load.
        # Cycles (an exception's traceback, a cancelled task) still go within 10,000 allocations.
        gc.set_threshold(GC_YOUNG_THRESHOLD)
        reaper = asyncio.ensure_future(reap_forever(gateway))
        heartbeat = asyncio.ensure_future(
            beat_forever(ledger_pool, gateway.live, gateway.ttl, settings.checkpoint_interval_seconds)
        )
        sweeper = asyncio.ensure_future(sweep_forever(pool))
        log.info("gateway replica %s ready", gateway.replica)
        try:
            yield
        finally:
            reaper.cancel()
            sweeper.cancel()
            await gateway.drain()
            heartbeat.cancel()
            await upstream.aclose()
            await ledger_pool.close()
            await pool.close()
            await probe.close()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        if stopping.begun:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        # Both checks at once: a PostgreSQL that answers neither costs one check's timeout, not two. The probe
        # has its own connection (a busy pool is not an unreachable PostgreSQL) and reads the schema's
        # revision: a replica on a schema older than its release is not ready.
        problem, ledger = await asyncio.gather(probe.check(), ledger_ready(gateway.ledger_pool))
        if problem is None and ledger:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": problem or UNREACHABLE}, status_code=503)

    async def jwks(_: Request) -> Response:
        return JSONResponse(authority.jwks(), headers={"cache-control": "public, max-age=300"})

    async def http_error(request: Request, error: Exception) -> Response:
        # Starlette's own 404 and 405 (an unknown path, a GET on /v1/messages) as Anthropic's error JSON,
        # which is what the SDK and every other client of this API read.
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return error_response(404, "not_found_error", f"{request.url.path} is not an endpoint here.")
        if error.status_code == 405:
            allowed = {k.lower(): v for k, v in (error.headers or {}).items() if k.lower() == "allow"}
            message = f"{request.method} is not allowed on {request.url.path}."
            return error_response(405, "invalid_request_error", message, headers=allowed)
        return error_response(error.status_code, "invalid_request_error", error.detail)

    async def internal_error(_: Request, error: Exception) -> Response:
        reference = secrets.token_hex(4)
        log.exception("unhandled error (reference %s)", reference, exc_info=error)
        message = f"The gateway failed to handle this request (reference {reference})."
        return error_response(500, "api_error", message, retry=True)

    routes = [
        # Its POSTs are answered by `TurnRoute` before the router; listed so other methods get a 405.
        Route(MESSAGES_PATH, create_message, methods=["POST"]),
        Route("/v1/switchboard/usage", usage_endpoint, methods=["GET"]),
        Route("/v1/switchboard/overage", overage_endpoint, methods=["POST"]),
        Route(TURN_PATH, turn_charge_endpoint, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route(oauth.METADATA_PATH, oauth.metadata, methods=["GET"]),
        Route(oauth.DEVICE_AUTHORIZATION_PATH, oauth.device_authorization, methods=["POST"]),
        Route(oauth.TOKEN_PATH, oauth.token, methods=["POST"]),
        Route(oauth.REVOCATION_PATH, oauth.revoke, methods=["POST"]),
        Route(oauth.DEVICE_PAGE_PATH, device_page, methods=["GET", "POST"]),
        Route(oauth.ACCOUNT_PAGE_PATH, account_page, methods=["GET", "POST"]),
        Route(oauth.UPGRADE_PAGE_PATH, account_page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        # Outermost first: the client address is settled before the access log and the rate limits read it.
        middleware=[
            *trusted_proxy_middleware(settings.trusted_proxies),
            Middleware(AccessLog),
            Middleware(TurnRoute),
        ],
        exception_handlers={
            **dict.fromkeys(LEDGER_ERRORS, ledger_unavailable),
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
