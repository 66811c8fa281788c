"""The gateway's typed configuration: from a TOML file and the environment, never from a request.

`SWITCHBOARD_GATEWAY_CONFIG` names an optional TOML file whose keys are the field names below; each field
can also be set (and overridden) by `SWITCHBOARD_GATEWAY_<FIELD>` in the environment. Signing keys are a
list of PEM files (`os.pathsep`-separated in the environment): the first signs, all are published.
`DatabaseSettings` is what the commands that only talk to PostgreSQL need (`load_database_settings`);
`GatewaySettings` adds the vendor key, the signing keys and the public URL, for a replica.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_FILE_ENV = "SWITCHBOARD_GATEWAY_CONFIG"
ENV_PREFIX = "SWITCHBOARD_GATEWAY_"
# Variables with the prefix that are not settings: the file's name, and the language server's gateway URL.
_OTHER_ENV = frozenset({CONFIG_FILE_ENV, "SWITCHBOARD_GATEWAY_URL"})
_log = logging.getLogger("switchboard.gateway.config")
# Access tokens are checked against the account on every request, but a stolen one must still die soon.
MAX_ACCESS_TOKEN_SECONDS = 900
# List settings in the environment: signing keys are paths (`os.pathsep`), proxies are CIDRs (commas, since
# an IPv6 address has colons).
_LIST_SEPARATORS = {"signing_keys": os.pathsep, "trusted_proxies": ",", "allowed_betas": ","}
# Table settings in the environment are JSON objects:
# SWITCHBOARD_GATEWAY_RATE_LIMITS='{"token_requests_per_address": 600}'.
_JSON_FIELDS = ("rate_limits",)
# The most JSON values a request body may make (`max_body_json_items`): what parsing costs is its values,
# about 0.3-0.6 µs and 100 bytes each, not its bytes. A full 200,000-token context holds far fewer: a token
# carries at most a few of the commas, `{` and `[` counted (`turn_request.json_items`), strings' included.
MAX_BODY_JSON_ITEMS = 500_000
# The `anthropic-beta` values passed on to Anthropic (`allowed_betas`), by name prefix without the date: betas
# known not to change what a turn costs beyond the credit formula. Any other is refused (400), so a beta with
# its own prices (context-1m's long-context rates, code-execution's container hours, mcp-client's,
# skills', computer-use's, compact-'s, extended-cache-ttl's 1-hour writes) is never forwarded unseen.
ALLOWED_BETAS = (
    "prompt-caching-",
    "token-efficient-tools-",
    "interleaved-thinking-",
    "fine-grained-tool-streaming-",
    "output-128k-",
    "pdfs-",
    "files-api-",
    "search-results-",
    "context-management-",
    "structured-outputs-",
    "effort-",
)


class ConfigError(Exception):
    """The configuration is missing or invalid; `str()` says what to fix (and never echoes a secret)."""


class RateLimits(BaseModel):
    """How many requests each sign-in rate limit lets through per window (docs/gateway.md, Rate limits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_authorizations_per_address: Annotated[int, Field(ge=1)] = 10  # a minute
    token_requests_per_address: Annotated[int, Field(ge=1)] = 120  # a minute
    device_forms_per_address: Annotated[int, Field(ge=1)] = 20  # ten minutes
    # Unused: /device no longer shows what a code asks for before the password is checked, so there is no
    # look-up to limit. Still accepted, so a configuration that sets it keeps loading.
    device_code_lookups_per_address: Annotated[int, Field(ge=1)] = 60
    refreshes_per_account: Annotated[int, Field(ge=1)] = 60  # an hour
    password_failures_per_account: Annotated[int, Field(ge=1)] = 10  # fifteen minutes
    user_code_failures_per_account: Annotated[int, Field(ge=1)] = 10  # an hour


class DatabaseSettings(BaseModel):
    """What the commands that only talk to PostgreSQL need (`migrate`, `accounts …`): every setting but the
    vendor key, the signing keys and the public URL, so the host that runs migrations never holds those."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: SecretStr = Field(
        description="PostgreSQL URL, e.g. postgresql://user@host:5432/switchboard"
    )
    upstream_base_url: str = "https://api.anthropic.com"
    issuer: str | None = Field(default=None, description="The tokens' `iss` (default: public_base_url)")
    reservation_ttl_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 60.0
    # How much of a stream a replica killed outright can leave uncharged (liveness.py).
    checkpoint_interval_seconds: Annotated[float, Field(ge=0.05, le=3600)] = 1.0
    access_token_seconds: Annotated[int, Field(ge=30, le=MAX_ACCESS_TOKEN_SECONDS)] = MAX_ACCESS_TOKEN_SECONDS
    upstream_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 600.0
    pool_min_size: Annotated[int, Field(ge=1, le=100)] = 2
    pool_max_size: Annotated[int, Field(ge=1, le=1000)] = 20
    pool_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    # How long a whole (non-streamed) answer waits for PostgreSQL to take its charge before it is given up.
    settle_wait_seconds: Annotated[float, Field(ge=0, le=120)] = 10.0
    # The most turns one ledger statement reserves or settles when they queue up (gateway/batches.py); 1 sends
    # every turn alone (a distributed PostgreSQL that routes a statement by its one account).
    ledger_batch_max: Annotated[int, Field(ge=1, le=1000)] = 64
    max_body_bytes: Annotated[int, Field(ge=1024)] = 32 * 1024 * 1024
    # What parsing a body costs is its JSON values, not its bytes (gateway/body.py).
    max_body_json_items: Annotated[int, Field(ge=1000)] = MAX_BODY_JSON_ITEMS
    allowed_betas: list[str] = Field(
        default_factory=lambda: list(ALLOWED_BETAS),
        description="anthropic-beta name prefixes passed on (comma-separated in the environment)",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of the proxies whose X-Forwarded-For is believed (default: none, not localhost)",
    )
    device_code_seconds: Annotated[int, Field(ge=60, le=1800)] = 600
    device_poll_interval_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    refresh_token_seconds: Annotated[int, Field(ge=3600, le=365 * 86400)] = 30 * 86400
    # How long a spent refresh token may be presented again, by the same client, without revoking its family
    # (editor windows that start together share one stored token). 0: every reuse revokes.
    refresh_reuse_grace_seconds: Annotated[float, Field(ge=0, le=60)] = 30.0
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # On SIGTERM: how long /readyz answers 503 while the replica still serves (so the load balancer takes it
    # out of rotation before its listener closes; 0: stop accepting at once), then how long requests in
    # flight (streams) may take to finish before they are cancelled, then how much longer settlements
    # PostgreSQL refused are retried before the sweep is left to charge their last checkpoint (a restart or
    # failover takes seconds; the orchestrator kills the replica after its own grace period).
    # docs/gateway.md, Several replicas.
    shutdown_delay_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    shutdown_grace_seconds: Annotated[float, Field(ge=1, le=3600)] = 600.0
    shutdown_settle_seconds: Annotated[float, Field(ge=0, le=300)] = 10.0
    support_contact: str | None = Field(
        default=None, description="Who users ask for an upgrade (an email or URL), shown on /account"
    )

    @field_validator("upstream_base_url")
    @classmethod
    def _upstream_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        # Normalized here so a typo stops the process instead of silently trusting nobody (or everybody).
        return [str(ipaddress.ip_network(item.strip(), strict=False)) for item in value if item.strip()]

    @field_validator("allowed_betas")
    @classmethod
    def _betas(cls, value: list[str]) -> list[str]:
        return [item.strip() for item in value if item.strip()]

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        # Both drivers must be able to read it, or a replica starts and fails every request (asyncpg raises
        # ValueError on a port that is not a number). The messages never quote the URL: it has the password.
        if problem := database_url_problem(value.get_secret_value()):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _pool_sizes(self) -> Self:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"pool_min_size ({self.pool_min_size}) is larger than pool_max_size ({self.pool_max_size})"
            )
        return self


class GatewaySettings(DatabaseSettings):
    """What a replica (`serve`) and `tokens issue` need: everything."""

    upstream_api_key: SecretStr = Field(description="The vendor's Anthropic key: never sent to a client")
    signing_keys: Annotated[list[Path], Field(min_length=2)] = Field(
        description="Ed25519 PEM files: the first signs access tokens, every one is published in the JWKS"
    )
    public_base_url: str = Field(description="Where clients reach the gateway, e.g. https://cloud.example")

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return _http_url(value)

    @property
    def token_issuer(self) -> str:
        return self.issuer or self.public_base_url


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


_URL_FORM = "its form: postgresql://user:password@host:port/database"


def database_url_problem(url: str) -> str | None:
    """Why libpq (psycopg) or asyncpg could not read `url`, in words that never quote it; None if both can."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if not url.startswith(("postgresql://", "postgres://")):
        return "must be a postgresql:// URL"
    if _raw_reserved_characters(url):
        return (
            "cannot be read: its user or password seems to hold a character a URL reserves (/ # ? @): "
            "percent-encode the password (e.g. / as %2F, @ as %40, # as %23, ? as %3F, : as %3A)"
        )
    try:
        parts = conninfo_to_dict(url)
        split = urlsplit(url)
    except (ProgrammingError, ValueError):
        return f"is malformed ({_URL_FORM})"
    ports = [str(parts.get("port") or "")]
    # asyncpg reads the host list itself (connect_utils._parse_hostlist): `host:port`, `[v6]:port`, a comma
    # between hosts; each port must be an integer.
    hostlist = split.netloc.rpartition("@")[2]
    for spec in hostlist.split(",") if hostlist else ():
        if spec.startswith("["):
            match = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", spec)
            if match is None:
                return f"has a malformed IPv6 host ({_URL_FORM})"
            ports.append(match.group(2) or "")
        else:
            ports.append(spec.partition(":")[2])
    for port in (unquote(item).strip() for group in ports for item in group.split(",")):
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            return f"has a port that is not a number from 1 to 65535 ({_URL_FORM})"
    return _asyncpg_problem(url)


def _raw_reserved_characters(url: str) -> bool:
    """Whether `url`'s password (or user) holds `/ # ? @` unencoded. Either parser then reads a wrong host or
    port (`s3c/ret` ends the host part at the `/`, and `s3c@ret` makes `ret@host` the host), and their
    messages would quote the part of the password they took for a host. Judged from the URL's shape:
    more than one `@` before the path, or none there but one further on while the part before the path has a
    `:` followed by something that is no port, or the path holds the `@`."""
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if authority.count("@") > 1:
        return True
    if "@" in authority or "@" not in rest:
        return False
    _, colon, port = authority.rpartition("]")[2].partition(":")
    if not colon:
        return False
    path = re.split(r"[?#]", rest[len(authority) :], maxsplit=1)[0]
    return not (port.isascii() and port.isdigit()) or "@" in path


# Parameters of libpq that PostgreSQL also takes as settings when a connection starts: asyncpg passes them on
# and they work. asyncpg sends any other parameter it does not read itself (`connect_timeout`, `keepalives`,
# ...) as a setting too, which PostgreSQL refuses: every ledger statement would fail.
_STARTUP_SETTINGS = frozenset({"application_name", "client_encoding", "options"})


def _asyncpg_problem(url: str) -> str | None:
    """Why asyncpg (the ledger's driver) could not use `url`, read by asyncpg's own parser; None if it can."""
    from asyncpg import connect_utils

    # Private, so looked up: in an asyncpg without it, libpq's parse and the port check above stand.
    parse: Any = getattr(connect_utils, "_parse_connect_dsn_and_args", None)
    if parse is None:
        return None
    nothing: Any = None
    try:
        _, params = parse(
            dsn=url,
            host=nothing,
            port=nothing,
            user=nothing,
            password=nothing,
            passfile=nothing,
            database=nothing,
            ssl=nothing,
            service=nothing,
            servicefile=nothing,
            direct_tls=nothing,
            server_settings=nothing,
            target_session_attrs=nothing,
            krbsrvname=nothing,
            gsslib=nothing,
        )
    except TypeError:  # its signature changed: as above
        return None
    except OSError as error:  # a file the URL names (sslrootcert=, sslcert=) that cannot be read
        where = f"{error.filename}: " if error.filename else ""
        return f"names a file asyncpg (the ledger's driver) cannot read ({where}{error.strerror or error})"
    except Exception as error:  # its message may quote the URL: only its kind
        return f"is not a URL asyncpg (the ledger's driver) can use: {type(error).__name__} ({_URL_FORM})"
    for name in sorted(getattr(params, "server_settings", None) or {}):
        if name not in _STARTUP_SETTINGS:
            hint = "; pool_timeout_seconds bounds connecting" if name == "connect_timeout" else ""
            return (
                f"has the parameter {name[:40]!r}, which only libpq reads: asyncpg (the ledger's driver)"
                f" would send it to PostgreSQL as a setting, which refuses it, and every turn would fail;"
                f" remove it from the URL (both drivers read host, port, dbname, user, password, sslmode and"
                f" target_session_attrs){hint}"
            )
    return None


_S = TypeVar("_S", bound=DatabaseSettings)


def load_settings(environ: Mapping[str, str] | None = None) -> GatewaySettings:
    """The settings from the file named by `SWITCHBOARD_GATEWAY_CONFIG` (if any) and the environment."""
    return _load(GatewaySettings, environ)


def load_database_settings(environ: Mapping[str, str] | None = None) -> DatabaseSettings:
    """`load_settings` for the commands that only talk to PostgreSQL: the vendor key, the signing keys and the
    public URL are neither needed nor checked (a key that is not a setting at all still is)."""
    return _load(DatabaseSettings, environ)


def _load(model: type[_S], environ: Mapping[str, str] | None) -> _S:
    env = os.environ if environ is None else environ
    for name in unknown_environment(env):
        _log.warning("%s", name)
    values: dict[str, Any] = {}
    from_file: set[str] = set()
    if path := env.get(CONFIG_FILE_ENV):
        values.update(_read_file(Path(path)))
        from_file = set(values)
    from_env = _from_environment(env)
    values.update(from_env)
    unknown = sorted(set(values) - set(GatewaySettings.model_fields))
    if unknown:  # only a file can have them: the environment is read by field name
        raise ConfigError(
            "invalid gateway configuration:\n  "
            + "\n  ".join(f"{key} (in {path}): not a setting{_did_you_mean(key)}" for key in unknown)
        )
    try:
        return model.model_validate(
            {name: value for name, value in values.items() if name in model.model_fields}
        )
    except ValidationError as error:
        raise ConfigError(_describe(error, from_file - set(from_env))) from None


def unknown_environment(env: Mapping[str, str]) -> list[str]:
    """A warning for each `SWITCHBOARD_GATEWAY_*` variable that is no setting (else a typo goes unseen)."""
    known = {ENV_PREFIX + name.upper() for name in GatewaySettings.model_fields} | _OTHER_ENV
    return [
        f"{name} is not a gateway setting: ignored{_did_you_mean(name[len(ENV_PREFIX) :].lower(), env=True)}"
        for name in sorted(env)
        if name.startswith(ENV_PREFIX) and name not in known
    ]


def _did_you_mean(key: str, env: bool = False) -> str:
    close = difflib.get_close_matches(key, list(GatewaySettings.model_fields), n=1)
    if not close:
        return ""
    return f" (did you mean {ENV_PREFIX + close[0].upper() if env else close[0]}?)"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read {CONFIG_FILE_ENV}={path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in GatewaySettings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        separator = _LIST_SEPARATORS.get(name)
        if name in _JSON_FIELDS:
            values[name] = _json_object(name, raw)
        elif separator:
            parts = [part for part in raw.split(separator) if part]
            if name == "signing_keys" and len(parts) < 2 and "," in raw:
                # Commas, as trusted_proxies takes: one path alone is never enough (at least two), so a comma
                # here separates paths rather than being part of one.
                parts = [part.strip() for part in raw.split(",") if part.strip()]
            values[name] = parts
        else:
            values[name] = raw
    return values


def _json_object(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a JSON object") from None


def _describe(error: ValidationError, from_file: set[str]) -> str:
    """Which settings are wrong and why, without the offending values (they may be secrets): one the file set
    by its key, one the environment set (or nobody: a required one) with its variable too."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "settings"
        top = str(problem["loc"][0]) if problem["loc"] else None
        setting = f"{field} ({ENV_PREFIX}{top.upper()})" if top and top not in from_file else field
        lines.append(f"{setting}: {problem['msg']}")
    return "invalid gateway configuration:\n  " + "\n  ".join(lines)
