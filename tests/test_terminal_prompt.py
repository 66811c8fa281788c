"""A line printed by another thread while the REPL waits at its prompt, on a pseudo-terminal with readline."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import pytest

pytest.importorskip("readline")

# What the REPL does: readline's input() at the prompt, inside Ui.at_prompt, while another thread prints a
# line (a charge that came late) once the test says so (a file appears).
SCRIPT = """
import os, sys, threading, time
import readline
from switchboard.terminal.console import Console, Ui

ui = Ui(Console(sys.stdout), Console(sys.stderr))
go = sys.argv[1]

def late():
    while not os.path.exists(go):
        time.sleep(0.02)
    ui.out.line("LATE LINE")

threading.Thread(target=late, daemon=True).start()
with ui.at_prompt(lambda: "> " + readline.get_line_buffer()):
    line = input("> ")
print("GOT[" + line + "]")
"""


def _read_until(master: int, output: bytearray, needle: bytes, timeout: float = 10, since: int = 0) -> None:
    """Read into `output` until `needle` is in it, at `since` or after."""
    deadline = time.monotonic() + timeout
    while needle not in output[since:]:
        if time.monotonic() > deadline:
            pytest.fail(f"no {needle!r} within {timeout}s; output: {bytes(output)!r}")
        try:
            output += os.read(master, 4096)
        except OSError:
            time.sleep(0.02)


def test_a_line_printed_at_the_prompt_leaves_a_wrapped_typed_line_whole(tmp_path: os.PathLike[str]) -> None:
    """The typed line is longer than the terminal is wide: it is not cleared (only its last row would be,
    and the rest drawn twice); the line goes below it, then the prompt with all that was typed."""
    go = os.path.join(tmp_path, "go")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 5, 20, 0, 0))
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "INPUTRC": os.devnull}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, go],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    output = bytearray()
    typed = "the quick brown fox jumps over the lazy dog"  # 43 characters, on a terminal 20 wide
    try:
        _read_until(master, output, b"> ")
        os.write(master, typed.encode())
        _read_until(master, output, b"lazy dog")
        time.sleep(0.3)
        before = len(output)
        open(go, "w").close()
        _read_until(master, output, b"LATE LINE", since=before)
        # The typed line was echoed once already, before the late line: its redraw comes after it.
        _read_until(master, output, b"> " + typed.encode(), since=before)
        after = bytes(output[before:])
        assert b"\x1b[K" not in after, after
        assert after.startswith(b"\r\nLATE LINE\r\n> " + typed.encode()), after
        os.write(master, b" again\r")
        _read_until(master, output, b"GOT[")
        _read_until(master, output, b"]")
        assert f"GOT[{typed} again]".encode() in output, bytes(output)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
