"""Typed configuration, read from the server's own environment (never from the client)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


def _gateway_url(value: str) -> str | None:
    """The gateway's base URL, without a trailing slash; empty (or not http/https) means none."""
    value = value.strip().rstrip("/")
    return value if value.startswith(("https://", "http://")) else None


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

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("SWITCHBOARD_HOME") or platformdirs.user_data_dir(APP_NAME, appauthor=False)
        return cls(
            state_dir=Path(home).expanduser().resolve(),
            api_key=os.environ.get("ANTHROPIC_API_KEY") or None,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            request_timeout=_float_env("SWITCHBOARD_REQUEST_TIMEOUT", 60.0),
            max_retries=_int_env("SWITCHBOARD_MAX_RETRIES", 2),
            max_output_tokens=_int_env("SWITCHBOARD_MAX_OUTPUT_TOKENS", 8192),
            prompt_cache=os.environ.get("SWITCHBOARD_PROMPT_CACHE", "1") != "0",
            gateway_url=_gateway_url(os.environ.get("SWITCHBOARD_GATEWAY_URL", "")),
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
