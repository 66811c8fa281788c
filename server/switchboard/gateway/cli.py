"""`switchboard gateway ...`: run a replica, migrate the database, and administer accounts.

`tokens issue` prints an access token for an account without signing in (users sign in with the device
flow, `signin/`), for tests, demos and support. It needs the signing keys, so only who runs the gateway
can use it.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import json
import math
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from switchboard.listening import listening_socket
from switchboard.plans.catalog import PLANS

from .config import ConfigError, DatabaseSettings, GatewaySettings, load_database_settings, load_settings

# uvloop has no Windows build; there the standard loop serves (slower, same behaviour).
EVENT_LOOP: Literal["uvloop", "asyncio"] = "asyncio" if sys.platform == "win32" else "uvloop"
# A command takes the settings it needs: `GatewaySettings` (serve, tokens issue) or `DatabaseSettings`.
Command = Callable[[argparse.Namespace, Any, TextIO], Coroutine[Any, Any, int] | int]
# The commands that need the vendor key, the signing keys and the public URL; the others only PostgreSQL.
_NEED_EVERY_SETTING = frozenset({"serve", "tokens"})
# The exit status when whoever reads the output stops early (`accounts usage EMAIL | head -3`): what a shell
# reports for a program SIGPIPE ended (128 + 13), as `cat` or `yes` give. The command's work was done.
EXIT_BROKEN_PIPE = 141
# uvicorn's default backlog, for the socket `serve` binds itself.
LISTEN_BACKLOG = 2048


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    try:
        status = _main(argv, stream)
        stream.flush()  # here, not at exit, where a closed pipe would be reported with a traceback
        return status
    except BrokenPipeError:
        # Python's advice (the signal module's "Note on SIGPIPE"): point stdout at devnull, so the flush at
        # exit has nowhere to fail, and exit without a traceback.
        if stream is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None, stream: TextIO) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _new_key(Path(args.path), stream)
    if args.command == "serve":
        from .accesslog import configure_logging

        # A replica's log is JSON lines from the first: the settings' own warnings (a mistyped variable) too.
        configure_logging()
    try:
        settings = load_settings() if args.command in _NEED_EVERY_SETTING else load_database_settings()
        command: Command = args.run
        result = command(args, settings, stream)
        return asyncio.run(result) if not isinstance(result, int) else result
    except (ConfigError, _Usage) as error:
        print(f"switchboard gateway: {error}", file=sys.stderr)
        return 2
    except _Failed as failed:
        print(f"switchboard gateway: {failed}", file=sys.stderr)
        return 1
    except _DATABASE_ERRORS as error:
        print(f"switchboard gateway: {_database_failure(error)}", file=sys.stderr)
        return 1


def _database_failure(error: Exception) -> str:
    """One line on what went wrong with the database (the URL and its password are never in it)."""
    from .migrate import MigrationError, database_error_text

    return str(error) if isinstance(error, MigrationError) else database_error_text(error)


class _Failed(Exception):
    pass


class _Usage(Exception):
    """A command given arguments it refuses (exit status 2, like a configuration error): nothing changed."""


def _database_errors() -> tuple[type[Exception], ...]:
    import psycopg

    from .migrate import MigrationError

    return (psycopg.Error, MigrationError)


_DATABASE_ERRORS = _database_errors()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard gateway", description="Switchboard Cloud, the hosted gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one gateway replica (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8780)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date (or down)")
    migrate.add_argument(
        "--down-to", metavar="REVISION", help="go down to this revision instead (e.g. 0007: docs/gateway.md)"
    )
    migrate.add_argument(
        "--drop-everything",
        action="store_true",
        help="let --down-to base drop every table: accounts, the ledger and sign-ins are lost",
    )
    migrate.add_argument(
        "--lock-timeout",
        metavar="SECONDS",
        type=float,
        default=5.0,
        help="how long a migration waits for a table lock before it is rolled back and tried again (5)",
    )
    migrate.set_defaults(run=_migrate)

    keys = commands.add_parser("keys", help="create a new Ed25519 signing key")
    keys.add_argument("action", choices=["new"])
    keys.add_argument("path", help="where to write the PEM file (never overwritten)")

    accounts = commands.add_parser("accounts", help="create and manage accounts")
    actions = accounts.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--plan", required=True, choices=list(PLANS))
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(run=_accounts_create)
    set_plan = actions.add_parser("set-plan", help="move an account to another plan")
    set_plan.add_argument("account", help="account id or email")
    set_plan.add_argument("plan", choices=list(PLANS))
    set_plan.set_defaults(run=_accounts_set_plan)
    revoke = actions.add_parser("revoke", help="stop an account: its tokens stop working at once")
    revoke.add_argument("account", help="account id or email")
    revoke.set_defaults(run=_accounts_revoke)
    reinstate = actions.add_parser(
        "reinstate", help="undo a revoke: the account can sign in again (its old sessions stay signed out)"
    )
    reinstate.add_argument("account", help="account id or email")
    reinstate.set_defaults(run=_accounts_reinstate)
    sign_out = actions.add_parser(
        "sign-out", help="sign an account out everywhere: its refresh tokens stop working at once"
    )
    who = sign_out.add_mutually_exclusive_group(required=True)
    who.add_argument("account", nargs="?", help="account id or email")
    who.add_argument("--everyone", action="store_true", help="every account (after restoring a backup)")
    sign_out.set_defaults(run=_accounts_sign_out)
    usage = actions.add_parser("usage", help="print an account's usage report (JSON)")
    usage.add_argument("account", help="account id or email")
    usage.set_defaults(run=_accounts_usage)

    tokens = commands.add_parser(
        "tokens", help="access tokens without signing in (for tests, demos and support)"
    )
    token_actions = tokens.add_subparsers(dest="action", required=True)
    issue = token_actions.add_parser("issue", help="print a short-lived access token for an account")
    issue.add_argument("--account", required=True, help="account id or email")
    issue.set_defaults(run=_tokens_issue)
    return parser


def _serve(args: argparse.Namespace, settings: GatewaySettings, out: TextIO) -> int:
    import logging

    import uvicorn

    from .accesslog import configure_logging
    from .app import create_app
    from .shutdown import DelayedShutdownServer, Shutdown

    # The port first: taken, it is one line and exit status 1 before anything logs "ready".
    listener = _listen(args.host, args.port)
    configure_logging(secrets=[settings.upstream_api_key.get_secret_value()])
    # uvicorn says where it listens only for a socket it binds itself: the same line, for the one given it.
    port = listener.getsockname()[1]
    where = f"[{args.host}]" if ":" in args.host else args.host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", where, port
    )
    asyncio.run(_check_schema(settings))
    shutdown = Shutdown()
    app = create_app(settings, shutdown)
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1; the app trusts
    # exactly the configured `trusted_proxies` instead (signin/proxies.py).
    # uvloop and httptools (the gateway extra installs both): the event loop and the HTTP parser in C. The
    # pure-Python h11 and asyncio loop cost a replica about a third more CPU per request.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop=EVENT_LOOP,
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
        proxy_headers=False,
        # Longer than clients keep idle connections (httpx, so the anthropic SDK: 5 s), so the client closes
        # first; at uvicorn's default of 5 s a request could go out on a connection the gateway was closing.
        timeout_keep_alive=30,
        # After SIGTERM (and `shutdown_delay_seconds`): how long streams in flight may take to finish.
        timeout_graceful_shutdown=round(settings.shutdown_grace_seconds),
    )
    # SIGTERM: /readyz 503 at once, serving on for `shutdown_delay_seconds`, then the drain (shutdown.py).
    DelayedShutdownServer(config, shutdown, settings.shutdown_delay_seconds).run(sockets=[listener])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port` (bound as uvicorn binds one, SO_REUSEADDR), for uvicorn to serve
    on. Connections wait in its backlog while the replica starts, so "ready" in the log means it has its
    port."""
    try:
        return listening_socket(host, port, LISTEN_BACKLOG)
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        if error.errno == errno.EADDRINUSE:
            reason += ": another process listens there; stop it or choose another --port"
        raise _Failed(f"cannot listen on {host}:{port}: {reason}") from None


async def _check_schema(settings: GatewaySettings) -> None:
    """Refuse to start on a schema older than this release (its turns could be served and never charged);
    serve one a later release migrated, with a warning. A PostgreSQL that cannot be reached is not a
    reason to stay down: the replica starts, and /readyz makes the same check until it answers."""
    import logging

    from . import schema
    from .db import READY_TIMEOUT_SECONDS, schema_version

    log = logging.getLogger("switchboard.gateway")
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            conn = await AsyncConnection.connect(settings.database_url.get_secret_value(), autocommit=True)
            async with conn:
                version = await schema_version(conn)
    except (OSError, TimeoutError, *_DATABASE_ERRORS) as error:
        reason = type(error).__name__
        log.warning("cannot check the schema's revision at start-up (%s): /readyz checks it", reason)
        return
    if problem := schema.behind(version):
        raise _Failed(f"refusing to start: {problem}")
    if schema.ahead(version):
        log.warning(
            "the database is at revision %s, which a later release made (this one ships up to %s): serving,"
            " since migrations keep the previous release working",
            version,
            schema.shipped().head,
        )


def _migrate(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import schema
    from .migrate import DowngradeRefused, downgrade, upgrade

    if args.drop_everything and args.down_to != "base":
        raise _Usage("--drop-everything goes only with --down-to base")
    if not (math.isfinite(args.lock_timeout) and args.lock_timeout > 0):
        raise _Usage(
            "--lock-timeout takes a number of seconds above 0 (a migration waits that long for a lock)"
        )
    if args.down_to:
        try:
            downgrade(
                settings.database_url.get_secret_value(),
                args.down_to,
                args.lock_timeout,
                drop_everything=args.drop_everything,
            )
        except DowngradeRefused as refused:
            raise _Usage(str(refused)) from None
        print(f"The gateway database is at revision {args.down_to}.", file=out)
        return 0
    upgraded = upgrade(settings.database_url.get_secret_value(), lock_timeout=args.lock_timeout)
    if upgraded.ahead:
        print(
            f"switchboard gateway: warning: the database is at revision {upgraded.after}, which a later"
            f" release made (this one ships up to {schema.shipped().head}): nothing to do, since migrations"
            " keep the previous release working",
            file=sys.stderr,
        )
    elif upgraded.before == upgraded.after:
        print(f"The gateway database is up to date: revision {upgraded.after}; nothing to apply.", file=out)
    else:
        print(
            f"The gateway database is up to date: revision {upgraded.after}"
            f" (it was at {upgraded.before or 'no schema'} when this migrate began).",
            file=out,
        )
    return 0


def _new_key(path: Path, out: TextIO) -> int:
    from .tokens import new_signing_key

    try:
        kid = new_signing_key(path)
    except OSError as error:
        print(f"switchboard gateway: {_key_file_problem(path, error)}", file=sys.stderr)
        return 1
    print(f"Created signing key {kid} in {path}", file=out)
    return 0


def _key_file_problem(path: Path, error: OSError) -> str:
    """Why `keys new` could not write `path`, and what to do, rather than the OS's errno text."""
    folder = path.parent
    if error.errno is None:  # new_signing_key's own refusal (an existing key): already in words
        return str(error)
    if isinstance(error, FileExistsError):
        return f"{path} exists: a signing key is never overwritten"
    if isinstance(error, FileNotFoundError):
        return f"cannot create {path}: the folder {folder} does not exist; create the folder first"
    if isinstance(error, PermissionError):
        return f"cannot create {path}: the folder {folder} is not writable by this user"
    if isinstance(error, NotADirectoryError):
        return f"cannot create {path}: {folder} is not a folder"
    if isinstance(error, IsADirectoryError):
        return f"cannot create {path}: it is a folder; name the PEM file to create in it"
    return f"cannot create {path}: {error.strerror or type(error).__name__}"


async def _accounts_create(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import accounts

    password = _read_password(args.password_stdin)
    async with await _connect(settings) as conn:
        try:
            account = await accounts.create_account(conn, args.email, password, args.plan)
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
    print(json.dumps({"id": account.id, "email": account.email, "plan": account.plan}), file=out)
    return 0


async def _accounts_set_plan(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import accounts

    async with await _connect(settings) as conn:
        try:
            account = await accounts.set_plan(
                conn, (await accounts.find_account(conn, args.account)).id, args.plan
            )
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
    print(f"{account.email} ({account.id}) is on {account.spec.name}.", file=out)
    if not account.active:
        print(
            f"switchboard gateway: warning: {account.email} is revoked; the plan applies once it is"
            " reinstated (switchboard gateway accounts reinstate)",
            file=sys.stderr,
        )
    return 0


async def _accounts_revoke(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import accounts

    async with await _connect(settings) as conn:
        try:
            account = await accounts.revoke(conn, (await accounts.find_account(conn, args.account)).id)
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
    print(f"{account.email} ({account.id}) is revoked: its access tokens no longer work.", file=out)
    return 0


async def _accounts_reinstate(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    """Clear the revocation. Its sessions stay signed out: every refresh family and account page session is
    ended in the same transaction. An access token is checked against the account on every request, so one
    issued before the revoke would work again: reinstating waits until every such token has expired."""
    from . import accounts
    from .config import MAX_ACCESS_TOKEN_SECONDS
    from .signin import browser
    from .signin.refresh import revoke_account

    async with await _connect(settings) as conn, conn.transaction():
        try:
            account = await accounts.find_account(conn, args.account)
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
        if account.revoked_at is None:
            raise _Failed(f"{account.email} ({account.id}) is not revoked")
        cursor = await conn.execute("SELECT now() AS now")
        now = (await cursor.fetchone() or {}).get("now") or datetime.now(UTC)
        tokens_dead = account.revoked_at + timedelta(seconds=MAX_ACCESS_TOKEN_SECONDS)
        if now < tokens_dead:
            raise _Failed(
                f"{account.email} was revoked at {_utc(account.revoked_at)}: access tokens issued before then"
                f" are unexpired until {_utc(tokens_dead)} and would work again; reinstate it after that"
            )
        account = await accounts.reinstate(conn, account.id)
        families = await revoke_account(conn, account.id)
        pages = await browser.end_all(conn, account.id)
    print(
        f"{account.email} ({account.id}) is reinstated: it can sign in again; its {families} earlier"
        f" session(s) and {pages} account page session(s) stay signed out.",
        file=out,
    )
    return 0


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _accounts_sign_out(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import accounts
    from .signin import browser
    from .signin.refresh import revoke_account, revoke_everyone

    async with await _connect(settings) as conn, conn.transaction():
        if args.everyone:
            revoked, who = await revoke_everyone(conn), "Every account"
            pages = await browser.end_all(conn)
        else:
            try:
                account = await accounts.find_account(conn, args.account)
            except accounts.AccountError as error:
                raise _Failed(str(error)) from None
            revoked, who = await revoke_account(conn, account.id), f"{account.email} ({account.id})"
            pages = await browser.end_all(conn, account.id)
    print(
        f"{who} is signed out of {revoked} session(s) and {pages} account page session(s);"
        " access tokens already issued expire within 15 minutes.",
        file=out,
    )
    return 0


async def _accounts_usage(args: argparse.Namespace, settings: DatabaseSettings, out: TextIO) -> int:
    from . import accounts
    from .usage import usage_report

    async with await _connect(settings) as conn:
        try:
            account = await accounts.find_account(conn, args.account)
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
        report = await usage_report(conn, account)
    # The language server's report, and whether the account is revoked (null: active).
    revoked = _utc(account.revoked_at) if account.revoked_at else None
    shown = {**report.model_dump(mode="json", by_alias=True), "revokedAt": revoked}
    print(json.dumps(shown, indent=2), file=out)
    if revoked:
        print(f"switchboard gateway: {account.email} is revoked (since {revoked})", file=sys.stderr)
    return 0


async def _tokens_issue(args: argparse.Namespace, settings: GatewaySettings, out: TextIO) -> int:
    from . import accounts
    from .tokens import TokenAuthority

    authority = TokenAuthority.from_settings(settings)
    async with await _connect(settings) as conn:
        try:
            account = await accounts.find_account(conn, args.account)
        except accounts.AccountError as error:
            raise _Failed(str(error)) from None
    if not account.active:
        raise _Failed(f"{account.email} is revoked")
    print(authority.issue(account.id, account.plan), file=out)
    return 0


async def _connect(settings: DatabaseSettings) -> AsyncConnection[DictRow]:
    return await AsyncConnection[DictRow].connect(
        settings.database_url.get_secret_value(), autocommit=True, row_factory=dict_row
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")  # CRLF from Windows files
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise _Failed("the passwords differ")
    else:  # nothing to ask on: how it is called is wrong, not the account (exit status 2, as a usage error)
        raise _Usage("no terminal to ask the password on: give it with --password-stdin")
    if len(password) < 8:
        raise _Failed("the password must have at least 8 characters")
    return password
