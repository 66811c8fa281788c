"""Checks before anything heavy is imported or started: the options, the workspace, an API key.

Kept free of pygls and pydantic imports so that a missing key is reported at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .console import Ui

EXIT_USAGE = 2
GATEWAY_ENV = "SWITCHBOARD_GATEWAY_URL"
KEY_HELP = (
    "Set ANTHROPIC_API_KEY in your environment (export ANTHROPIC_API_KEY=sk-ant-...; keys are at "
    "https://console.anthropic.com/settings/keys), or run `switchboard chat --offline` for simulated answers."
)
NO_KEY = "No Anthropic API key: ANTHROPIC_API_KEY is not set (and no ANTHROPIC_BASE_URL either). " + KEY_HELP


@dataclass(frozen=True)
class Options:
    prompt: str
    offline: bool
    model: str | None
    workspace: Path
    conversation: str | None
    gateway: str | None = None  # Switchboard Cloud's URL (--gateway, else SWITCHBOARD_GATEWAY_URL)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        words: list[str] = list(getattr(args, "prompt", None) or [])
        return cls(
            prompt=" ".join(words).strip(),
            offline=bool(getattr(args, "offline", False)),
            model=getattr(args, "model", None) or None,
            workspace=Path(getattr(args, "workspace", None) or os.getcwd()).expanduser().resolve(),
            conversation=getattr(args, "conversation", None) or None,
            gateway=(getattr(args, "gateway", None) or os.environ.get(GATEWAY_ENV) or "").strip() or None,
        )

    @property
    def one_shot(self) -> bool:
        return bool(self.prompt)


def preflight(ui: Ui, options: Options) -> bool | None:
    """Whether to run offline (simulated answers); None to exit with EXIT_USAGE (already explained)."""
    if not options.workspace.is_dir():
        ui.error(f"{options.workspace} is not a folder; pass an existing one with --workspace.")
        return None
    if options.gateway is not None:
        if not options.gateway.startswith(("https://", "http://")):
            ui.error(f"--gateway {options.gateway!r}: give the gateway's http(s):// URL.")
            return None
        return options.offline  # signed in, the gateway answers: no own key needed
    return True if options.offline else _offline_instead(ui, options)


def has_credentials(env: Mapping[str, str]) -> bool:
    return bool(env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_BASE_URL"))


def _offline_instead(ui: Ui, options: Options) -> bool | None:
    """False when a key is configured; else explains, and on a terminal offers simulated answers."""
    if has_credentials(os.environ):
        return False
    ui.err.line(NO_KEY)
    if options.one_shot or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    try:
        answer = input("Start offline with simulated answers instead? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        ui.out.write("\n")
        return None
    return True if answer.strip().lower() in ("y", "yes") else None
