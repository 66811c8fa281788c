"""Where the terminal client writes: a stream with optional colour that knows whether it is mid-line."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Literal, TextIO

Style = Literal["dim", "bold", "red", "yellow", "cyan"]

_CODES: dict[Style, str] = {"dim": "2", "bold": "1", "red": "31", "yellow": "33", "cyan": "36"}

# A notice that comes again within this many seconds (the server says a session ended in two messages) is
# printed once.
REPEAT_SECONDS = 30.0

# C0 controls but tab and newline, DEL, and C1 controls: ESC starts a terminal's escape sequences (an OSC 8
# hyperlink, an OSC 52 clipboard write, a title change), and 0x9b/0x9d are single-byte CSI/OSC to some.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without the control characters a terminal would act on (newlines and tabs stay)."""
    return _CONTROLS.sub("", text)


def wants_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Console:
    """One output stream. Writes are flushed at once (answers stream) and serialized across threads.

    Everything written is passed through `printable` first: much of it comes from the server, the model or
    the gateway (answers, route reasons, error messages, the sign-in link), and none of it may drive the
    terminal. Colour is added afterwards, by `style`."""

    def __init__(self, stream: TextIO, colour: bool | None = None) -> None:
        self.stream = stream
        self.colour = wants_colour(stream) if colour is None else colour
        self._at_line_start = True
        self.lock = threading.RLock()
        self._broken = False
        # While the REPL waits at its prompt on this terminal: the prompt line as shown (the prompt and what
        # has been typed so far), for a line printed meanwhile (a charge that came late, a session that
        # ended) to clear first and draw again after it.
        self.prompt: Callable[[], str] | None = None

    def style(self, text: str, style: Style | None) -> str:
        if not self.colour or style is None or not text:
            return text
        return f"\x1b[{_CODES[style]}m{text}\x1b[0m"

    def write(self, text: str, style: Style | None = None) -> None:
        text = printable(text)
        if not text:
            return
        with self.lock:
            if self._broken:
                return
            try:
                self.stream.write(self.style(text, style))
                self.stream.flush()
            except BrokenPipeError:
                self._reader_left()
            self._at_line_start = text.endswith("\n")

    def _reader_left(self) -> None:
        """The reader of a pipe went away (`| head`): drop further output instead of failing."""
        self._broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def end_line(self) -> None:
        """Finishes a partly written line, if any."""
        with self.lock:
            if not self._at_line_start:
                self.write("\n")

    def line(self, text: str = "", style: Style | None = None) -> None:
        """Writes `text` on a line of its own; at the prompt, above it (the prompt is drawn again)."""
        with self.lock:
            prompt = self.prompt
            if prompt is not None:
                self._control("\r\x1b[K")  # the prompt line, cleared: the text takes its place
            self.end_line()
            self.write(text, style)
            self.write("\n")
            if prompt is not None:
                self._control(printable(prompt()))
                self._at_line_start = True  # what follows is readline's: it ends the line itself

    def _control(self, text: str) -> None:
        """`text` as is (terminal controls, and the prompt line readline drew), not through `printable`."""
        if self._broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._reader_left()

    def lines(self, texts: list[str], style: Style | None = None) -> None:
        for text in texts:
            self.line(text, style)


class Ui:
    """The client's two streams: `out` for the conversation, `err` for diagnostics."""

    def __init__(self, out: Console, err: Console) -> None:
        self.out = out
        self.err = err
        self._said: dict[str, float] = {}

    def first_time(self, text: str) -> bool:
        """Whether `text` was not already said in the last REPEAT_SECONDS (it counts as said now)."""
        now = time.monotonic()
        self._said = {said: at for said, at in self._said.items() if now - at < REPEAT_SECONDS}
        key = text.strip()
        first = key not in self._said
        self._said[key] = now
        return first

    @classmethod
    def standard(cls) -> Ui:
        return cls(Console(sys.stdout), Console(sys.stderr))

    def error(self, text: str) -> None:
        with self.err.lock:
            self.err.end_line()
            self.err.write("error:", "red")
            self.err.write(" " + text + "\n")

    def note(self, text: str) -> None:
        self.err.line(text, "dim")

    @contextlib.contextmanager
    def at_prompt(self, prompt: Callable[[], str]) -> Generator[None]:
        """While the REPL waits at its prompt: lines printed meanwhile (by the loop thread) go above it, and
        the prompt line (`prompt()`: the prompt and what has been typed) is drawn again after each. Only on
        a terminal: a pipe gets the lines as they are."""
        consoles = [console for console in (self.out, self.err) if _is_terminal(console.stream)]
        for console in consoles:
            console.prompt = prompt
        try:
            yield
        finally:
            for console in consoles:
                with console.lock:
                    console.prompt = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
