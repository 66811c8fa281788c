"""Where the terminal client writes: a stream with optional colour that knows whether it is mid-line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
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
        # While the REPL waits at its prompt on this terminal: where a line printed meanwhile by another
        # thread (a charge that came late, a session that ended) goes, to be written by the main thread.
        self.waiting: PromptWait | None = None

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
        """Writes `text` on a line of its own; at the prompt, below it (the prompt is drawn again)."""
        waiting = self.waiting
        off_main = threading.current_thread() is not threading.main_thread()
        if waiting is not None and off_main and waiting.post(self, text, style):
            return
        with self.lock:
            self.end_line()
            self.write(text, style)
            self.write("\n")

    def prompt_drawn(self) -> None:
        """The prompt line was drawn again: what follows is readline's, which ends the line itself."""
        with self.lock:
            self._at_line_start = True

    def control(self, text: str) -> None:
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
        """While the REPL waits at its prompt (in `input()`, on the main thread): a line printed meanwhile by
        another thread goes below the prompt line, which stays as it was (a line that wraps stays whole, in
        the scrollback), and the prompt is drawn again after it with what has been typed (`prompt()`). Only
        on a terminal: a pipe gets the lines as they are. See `PromptWait`."""
        consoles = [console for console in (self.out, self.err) if _is_terminal(console.stream)]
        if not consoles or not PromptWait.possible():
            yield
            return
        waiting = PromptWait(prompt, consoles)
        with waiting:
            yield


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_WAKE = getattr(signal, "SIGUSR1", None)  # absent on Windows
_current: PromptWait | None = None  # the prompt the main thread waits at, if any


def _woken(_signum: int, _frame: object) -> None:
    if (waiting := _current) is not None:
        waiting.drain()


class PromptWait:
    """Lines printed by another thread while the main thread waits in readline's `input()`.

    readline edits the line without the GIL, so another thread must not write to the terminal nor read
    readline's line buffer then. Instead a line is queued and the main thread is woken by a signal: Python's
    readline runs signal handlers between two keys, with its state consistent, and the handler writes the
    queued lines and draws the prompt again. A line that comes after Enter (readline has ended the line and
    restored the terminal, but `input()` has not returned yet) is written as it is, without a prompt: the
    answer follows it. Whether readline is still editing is told by the terminal's mode (readline turns
    canonical mode off while it edits), read on the main thread, where it cannot change meanwhile."""

    # A thread waits at most this long for its line to be written (the main thread is woken again each
    # WAKE_SECONDS, as a signal that comes while readline handles a key wakes nothing); then the line is
    # written when the prompt is left.
    POST_SECONDS = 2.0
    WAKE_SECONDS = 0.1

    _installed = False

    def __init__(self, prompt: Callable[[], str], consoles: list[Console]) -> None:
        self._prompt = prompt
        self._consoles = consoles
        self._lock = threading.RLock()  # reentrant: the handler may run on the main thread holding it
        self._written = threading.Condition(self._lock)
        self._pending: list[tuple[Console, str, Style | None]] = []
        self._posted = 0
        self._done = 0
        self._open = False
        self._draining = False

    @staticmethod
    def possible() -> bool:
        return (
            _WAKE is not None
            and hasattr(signal, "pthread_kill")
            and threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> None:
        global _current
        assert _WAKE is not None
        if not PromptWait._installed:  # once, for good: a signal that comes late must not kill the process
            signal.signal(_WAKE, _woken)
            PromptWait._installed = True
        with self._lock:
            self._open = True
        for console in self._consoles:
            console.waiting = self
        _current = self

    def __exit__(self, *_exc: object) -> None:
        global _current
        with self._lock:
            self._open = False
        for console in self._consoles:
            console.waiting = None
        _current = None
        self.drain(at_prompt=False)

    def post(self, console: Console, text: str, style: Style | None) -> bool:
        """Queues a line (on a thread other than the main one); False once the prompt is left."""
        with self._lock:
            if not self._open:
                return False
            self._pending.append((console, text, style))
            self._posted += 1
            mine = self._posted
        main = threading.main_thread().ident
        deadline = time.monotonic() + self.POST_SECONDS
        with self._lock:
            while self._done < mine and self._open and time.monotonic() < deadline:
                assert _WAKE is not None and main is not None
                with contextlib.suppress(OSError, ProcessLookupError):
                    signal.pthread_kill(main, _WAKE)
                self._written.wait(self.WAKE_SECONDS)
        return True

    def drain(self, *, at_prompt: bool = True) -> None:
        """Writes the queued lines (on the main thread): below the prompt line and the prompt drawn again
        after them while readline edits the line, else as they are."""
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                with self._lock:
                    lines, self._pending = self._pending, []
                    count = len(lines)
                if not lines:
                    return
                editing = at_prompt and _editing()
                first = self._consoles[0]
                with first.lock:
                    if editing:
                        first.control("\n")  # the prompt line stays as it is, whole
                    for console, text, style in lines:
                        with console.lock:
                            console.end_line()
                            console.write(text, style)
                            console.write("\n")
                    if editing:
                        first.control(printable(self._prompt()))
                        for console in self._consoles:
                            console.prompt_drawn()
                with self._lock:
                    self._done += count
                    self._written.notify_all()
        finally:
            self._draining = False


def _editing() -> bool:
    """Whether readline edits a line on stdin now: it turns the terminal's canonical mode off meanwhile."""
    try:
        import termios

        return not termios.tcgetattr(sys.stdin.fileno())[3] & termios.ICANON
    except Exception:  # no termios, stdin closed or not a terminal
        return False
