"""`python -m switchboard.fakeapi`: serve the fake Anthropic API until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from switchboard.fakeapi.server import FakeAnthropic

DEFAULT_PORT = 8765


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        api = FakeAnthropic(host=args.host, port=args.port, api_key=args.api_key).start()
    except (ValueError, OSError) as error:
        print(f"Cannot start the fake Anthropic API: {error}", file=sys.stderr)
        return 2
    try:
        _wait_for_termination(
            announce=lambda: print(
                f"Fake Anthropic API listening on {api.base_url} (simulated answers)", flush=True
            )
        )
    finally:
        api.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve a fake Anthropic Messages API (simulated answers).")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind (0 = any free port)")
    parser.add_argument(
        "--api-key", default=None, help="accept only this API key (default: any non-empty key)"
    )
    return parser


def _wait_for_termination(announce: Callable[[], None]) -> None:
    """Install the SIGTERM handler, then `announce`: a caller that reads the announcement and at once
    sends SIGTERM must find the handler in place, not Python's default (which exits with -15)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Signal handlers can only be installed from the main thread (tests may call main() elsewhere).
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if on_main_thread else None
    try:
        announce()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
