"""`switchboard chat`: the terminal client, the first real client of the language server."""

from __future__ import annotations

import argparse


def run_terminal_chat(args: argparse.Namespace) -> int:
    """The `chat` subcommand: a one-shot prompt, or the REPL. Returns the exit status."""
    from .console import Ui
    from .preflight import EXIT_USAGE, Options, preflight

    ui = Ui.standard()
    options = Options.from_args(args)
    offline = preflight(ui, options)
    if offline is None:
        return EXIT_USAGE
    from .app import run  # pygls, pydantic and the server only from here on

    return run(ui, options, offline)


__all__ = ["run_terminal_chat"]
