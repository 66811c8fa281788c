"""Typed configuration, read from the server's own environment (never from the client)."""

from __future__ import annotations

import ipaddress
import os
import re
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


GATEWAY_ENV = "SWITCHBOARD_GATEWAY_URL"


_DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme "://" authority path: the authority ends at the first "/" (query, fragment and backslash are refused
# before this is matched, so no other character can end it).
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/]*)(?P<path>/.*)?", re.DOTALL)
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:]*\]|[A-Za-z0-9._-]*)(?::(?P<port>[0-9]{1,5}))?")
_LABEL = re.compile(r"[a-z0-9_-]+")
# A last label that WHATWG URL parsing (VS Code's) reads as a number, so the whole host as an IPv4 address.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DOTTED_QUAD = re.compile(r"(?:(?:0|[1-9][0-9]{0,2})\.){3}(?:0|[1-9][0-9]{0,2})")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")


def gateway_url_problem(value: str) -> str | None:
    """Why `value` cannot be the gateway's URL, or None when it can (see `canonical_gateway_url`)."""
    return canonical_gateway_url(value)[1]


def canonical_gateway_url(value: str) -> tuple[str | None, str | None]:
    """The gateway's URL in the one form every client keys its refresh token by, or why it is refused.

    Tokens and passwords travel to it, so it must be https; plain http is allowed only to this machine
    (127.0.0.0/8, ::1, localhost), where nothing crosses a network. And it must be a plain absolute URL that
    every URL parser reads alike (VS Code's WHATWG URL, which names the SecretStorage key, and httpx, which
    picks the host a token goes to): printable ASCII only, no backslash, no user info, no query or fragment,
    no percent-encoding, no empty or dot path segments, a host name or IP address. Surrounding whitespace and
    trailing slashes are dropped; the result has its scheme and host in lower case and no default port.
    The VS Code client applies the same rules (client-ts/src/shared/account.ts, `canonicalGatewayUrl`), and
    tests/fixtures/gateway_urls.json holds the cases both sides are tested against."""
    text = value.strip().rstrip("/")
    refused = f"Refused Switchboard Cloud's URL {value.strip()!r}: "
    if any(not (0x21 <= ord(c) <= 0x7E) for c in text):
        return (
            None,
            refused
            + "it has whitespace, control or non-ASCII characters inside (use the punycode of a name).",
        )
    if "\\" in text:
        return None, refused + "it has a backslash."
    match = _URL.fullmatch(text)
    scheme = match["scheme"].lower() if match else ""
    if match is None or scheme not in _DEFAULT_PORTS:
        return None, f"Switchboard Cloud's URL {value.strip()!r} is not an https:// URL."
    if "?" in text or "#" in text:
        return None, refused + "a gateway URL has no query (?) or fragment (#)."
    authority, path = match["authority"], match["path"] or ""
    if "@" in authority:
        return None, refused + "a gateway URL has no user name or password (user@host)."
    host_port = _HOST_PORT.fullmatch(authority)
    if host_port is None or not host_port["host"]:
        return None, refused + "it has no plain host name (or IP address) and port."
    host = _host(host_port["host"].lower())
    port = int(host_port["port"]) if host_port["port"] else None
    if host is None:
        return None, refused + f"{host_port['host']!r} is not a plain host name or IP address."
    if port is not None and not 0 < port < 65536:
        return None, refused + f"{port} is not a port."
    segments = path.split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments):
        return None, refused + "its path has empty or dot (. or ..) segments."
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return (
            None,
            refused + "its path has characters a plain URL path does not (percent-encoding among them).",
        )
    if scheme == "http" and not _is_loopback(host.strip("[]")):
        return None, (
            refused + "sign-in tokens would cross the network unencrypted. "
            "Use its https:// URL (plain http:// is allowed only for localhost, 127.0.0.0/8 and ::1)."
        )
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}", None


def _host(host: str) -> str | None:
    """The host in canonical form (lower case; IPv6 compressed, in brackets), or None when it is not plain."""
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        # IPv4-mapped addresses print differently across Python versions (and WHATWG URL): not plain.
        return None if address.ipv4_mapped is not None else f"[{address.compressed}]"
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and not (
        _DOTTED_QUAD.fullmatch(host) and all(int(label) < 256 for label in labels)
    ):
        return None  # 127.1, 0x7f.1, 1.2.3.999: WHATWG reads some as addresses, httpx as names
    return host


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _gateway_url(value: str) -> tuple[str | None, str | None]:
    """The gateway's canonical URL (or None), and why a URL given was refused."""
    if not value.strip().rstrip("/"):
        return None, None
    return canonical_gateway_url(value)


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
