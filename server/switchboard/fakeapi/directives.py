"""Prompt directives: `[[fake:KEY=VALUE ...]]` in the last user message injects faults into that request,
for processes that cannot reach the FakeAnthropic object (the editor, the terminal client)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.fakeapi.errors import invalid
from switchboard.fakeapi.faults import Fault, FaultKind
from switchboard.fakeapi.replies import last_user_text

_DIRECTIVE = re.compile(r"\[\[fake:([^\]]*)\]\]")
_FLAGS: tuple[FaultKind, ...] = ("error_event", "drop", "malformed_sse", "truncated_json")
_NUMBERS = ("status", "slow", "stall", "words", "after", "retry_after")


@dataclass(frozen=True)
class Directives:
    faults: list[Fault] = field(default_factory=list[Fault])
    words: int | None = None


def request_directives(body: Mapping[str, Any]) -> Directives:
    """The directives in a request's last user message; a bad one is a 400."""
    try:
        return parse_directives(last_user_text(body.get("messages")))
    except ValueError as error:
        raise invalid(str(error)) from None


def parse_directives(text: str) -> Directives:
    """The faults and reply length the directives in `text` ask for. Raises ValueError on a bad directive."""
    settings = _settings(text)
    if not settings:
        return Directives()
    after = _int(settings, "after")
    faults: list[Fault] = []
    if "status" in settings:
        faults.append(
            Fault(
                "status", status=_int(settings, "status") or 529, retry_after=settings.get("retry_after", 0.0)
            )
        )
    faults += [Fault(flag, after_deltas=after) for flag in _FLAGS if flag in settings]
    if "stall" in settings:
        faults.append(Fault("stall", seconds=settings["stall"], after_deltas=after))
    if "slow" in settings:
        faults.append(Fault("slow", seconds=settings["slow"]))
    return Directives(faults, _int(settings, "words"))


def _settings(text: str) -> dict[str, float]:
    settings: dict[str, float] = {}
    for body in _DIRECTIVE.findall(text):
        for token in re.split(r"[\s,]+", body.strip()):
            if token:
                key, value = _setting(token)
                settings[key] = value
    return settings


def _setting(token: str) -> tuple[str, float]:
    key, has_value, raw = token.partition("=")
    if key in _FLAGS and not has_value:
        return key, 1.0
    if key not in _NUMBERS or not has_value:
        known = ", ".join([*_FLAGS, *(f"{name}=N" for name in _NUMBERS)])
        raise ValueError(f"unknown fake directive {token!r} (known: {known})")
    try:
        return key, float(raw)
    except ValueError:
        raise ValueError(f"fake directive {key} needs a number, not {raw!r}") from None


def _int(settings: dict[str, float], key: str) -> int | None:
    value = settings.get(key)
    return None if value is None else int(value)
