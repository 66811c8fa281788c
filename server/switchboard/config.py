"""Typed configuration, read from the server's own environment (never from the client)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "switchboard"


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


GATEWAY_ENV = "SWITCHBOARD_GATEWAY_URL"


def gateway_url_problem(value: str) -> str | None:
    """Why `value` cannot be the gateway's URL, or None when it can.

    Tokens and passwords travel to it, so it must be https; plain http is allowed only to this machine
    (127.0.0.0/8, ::1, localhost), where nothing crosses a network."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return f"Switchboard Cloud's URL {value!r} is not a URL."
    if parts.scheme not in ("https", "http") or not host:
        return f"Switchboard Cloud's URL {value!r} is not an https:// URL."
    if parts.scheme == "http" and not _is_loopback(host):
        return (
            f"Refused Switchboard Cloud's URL {value!r}: sign-in tokens would cross the network unencrypted. "
            "Use its https:// URL (plain http:// is allowed only for localhost, 127.0.0.0/8 and ::1)."
        )
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _gateway_url(value: str) -> tuple[str | None, str | None]:
    """The gateway's base URL without a trailing slash (or None), and why a URL given was refused."""
    value = value.strip().rstrip("/")
    if not value:
        return None, None
    problem = gateway_url_problem(value)
    return (None, problem) if problem else (value, None)


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    api_key: str | None
    base_url: str | None
    # Seconds without a byte from upstream before a request counts as stalled.
    request_timeout: float
    max_retries: int
    max_output_tokens: int
    # Prompt-cache breakpoints on (the default); off only to measure what caching saves.
    prompt_cache: bool = True
    # Switchboard Cloud's base URL (hosted mode, docs/gateway.md); None: no gateway configured.
    gateway_url: str | None = None
    # Why the configured gateway URL was refused (not https and not loopback); None when it was not.
    gateway_url_refused: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("SWITCHBOARD_HOME") or platformdirs.user_data_dir(APP_NAME, appauthor=False)
        gateway_url, gateway_url_refused = _gateway_url(os.environ.get(GATEWAY_ENV, ""))
        return cls(
            state_dir=Path(home).expanduser().resolve(),
            api_key=os.environ.get("ANTHROPIC_API_KEY") or None,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            request_timeout=_float_env("SWITCHBOARD_REQUEST_TIMEOUT", 60.0),
            max_retries=_int_env("SWITCHBOARD_MAX_RETRIES", 2),
            max_output_tokens=_int_env("SWITCHBOARD_MAX_OUTPUT_TOKENS", 8192),
            prompt_cache=os.environ.get("SWITCHBOARD_PROMPT_CACHE", "1") != "0",
            gateway_url=gateway_url,
            gateway_url_refused=gateway_url_refused,
        )

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def conversations_db(self) -> Path:
        return self.state_dir / "conversations.sqlite3"

    @property
    def ledger_db(self) -> Path:
        return self.state_dir / "ledger.sqlite3"
