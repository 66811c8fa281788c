"""The interactive loop: prompts stream their answers, `/commands` drive the protocol's other methods."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from pygls.exceptions import JsonRpcException

from switchboard.protocol.messages import Rating

from .console import Console
from .context import Context, UsageError
from .errors import METHOD_NOT_FOUND, describe
from .render import (
    conversation_heading,
    history_table,
    model_name,
    models_table,
    rating_line,
    turn_preview,
    usage_lines,
)

PROMPT = "› "
HELP = [
    "Type a message to chat; Ctrl-C stops an answer, Ctrl-D (or /quit) leaves.",
    "/models          the models, what they cost and which one is current (*)",
    "/model ID        use model ID for this workspace from the next message on",
    "/new             start a new conversation",
    "/history         this workspace's conversations, newest first",
    "/open ID         continue a conversation (an unambiguous id prefix will do)",
    "/signin          sign in to Switchboard Cloud (--gateway URL): prints a code and a link",
    "/signout         sign out of Switchboard Cloud (back to your own Anthropic key)",
    "/usage           your plan, credits used and left, overage, and how Auto routes for you",
    "/rate up|down    thumbs up or down on the last answer (/rate clear takes it back); Auto learns from it",
    "/good, /bad      the same as /rate up, /rate down",
    "/help            this list",
    "/quit            leave",
]


class Quit(Exception):
    """A command asked to leave the REPL."""


class Repl:
    def __init__(self, context: Context, history_file: Path | None = None) -> None:
        self.ctx = context
        self.out: Console = context.ui.out
        self._history = LineHistory(history_file)
        self._interactive = sys.stdin.isatty()
        self._commands: dict[str, Callable[[str], None]] = {
            "models": self.models,
            "model": self.model,
            "new": self.new,
            "history": self.history,
            "open": self.open,
            "usage": self.usage,
            "signin": self.signin,
            "signout": self.signout,
            "rate": self.rate,
            "good": lambda _arg: self.rate("up"),
            "bad": lambda _arg: self.rate("down"),
            "help": self.help,
            "quit": self.quit,
            "exit": self.quit,
        }

    def run(self) -> int:
        self._history.load()
        try:
            return self._loop()
        finally:
            self._history.save()

    def _loop(self) -> int:
        while True:
            try:
                line = self._read()
                if line is None:
                    return 0
                self.handle(line.strip())
            except Quit:
                return 0
            except KeyboardInterrupt:  # between two commands: as if at the prompt
                self.out.end_line()
                return 0
            if not self.ctx.session.client.running:
                return 1

    def _read(self) -> str | None:
        """The next line, or None to leave (Ctrl-D, or Ctrl-C on an empty line)."""
        try:
            return self._input()
        except EOFError:
            self.out.end_line()
            return None
        except KeyboardInterrupt:
            self.out.write("\n")
            return "" if self._history.had_text() else None

    def _input(self) -> str:
        if self._interactive:
            with self.ctx.ui.at_prompt(lambda: PROMPT + self._history.line_buffer()):
                return input(PROMPT)
        line = input()  # piped: echo the line, so that the output reads as a transcript
        self.out.line(PROMPT + line)
        return line

    def handle(self, line: str) -> None:
        if not line:
            return
        if line.startswith("/"):
            self._command(line[1:])
        else:
            self.chat(line)

    def _command(self, text: str) -> None:
        name, _, arg = text.partition(" ")
        command = self._commands.get(name.lower())
        if command is None:
            self.ctx.ui.error(f"Unknown command /{name}; /help lists the commands.")
            return
        try:
            command(arg.strip())
        except Quit:
            raise
        except Exception as exc:  # a failed request (or a bug) is one line, never a traceback
            self.ctx.ui.error(_message(exc))
        except KeyboardInterrupt:
            self.out.line("Interrupted.", "dim")

    # --- chat ---------------------------------------------------------------------------------------

    def chat(self, prompt: str) -> None:
        outcome = self.ctx.chatter.ask(self.ctx.state, prompt)
        self.ctx.report(outcome, self.out, repl=True)

    # --- commands -----------------------------------------------------------------------------------

    def models(self, _arg: str) -> None:
        result = self.ctx.call(self.ctx.session.models())
        current = self.ctx.state.model_override or result.selected
        self.out.lines(models_table(result, current))

    def model(self, arg: str) -> None:
        if not arg:
            self.ctx.ui.error("Which model? Usage: /model ID (/models lists them).")
            return
        result = self.ctx.call(self.ctx.session.select_model(arg))
        self.ctx.state.model_override = None  # the workspace's selection applies from now on
        self.out.line(f"Model: {model_name(result.selected)} ({result.selected}), from the next message on.")
        if result.notice:
            self.out.line(result.notice, "dim")

    def new(self, _arg: str) -> None:
        self.ctx.state.conversation_id = None
        self.out.line("New conversation: your next message starts it.")

    def history(self, _arg: str) -> None:
        result = self.ctx.call(self.ctx.session.conversations())
        self.out.lines(history_table(result, self.ctx.state.conversation_id))

    def open(self, arg: str) -> None:
        if not arg:
            self.ctx.ui.error("Which conversation? Usage: /open ID (/history lists them).")
            return
        conversation_id = self.ctx.find_conversation(arg)
        conversation = self.ctx.call(self.ctx.session.conversation(conversation_id))
        self.ctx.state.conversation_id = conversation.id
        self.out.line(conversation_heading(conversation), "bold")
        self.out.lines(turn_preview(conversation.turns))

    def usage(self, _arg: str) -> None:
        try:
            report = self.ctx.call(self.ctx.session.usage())
        except JsonRpcException as exc:
            if exc.code != METHOD_NOT_FOUND:
                raise
            self.out.line(
                "This server does not report usage yet (switchboard/usage is not available).", "dim"
            )
            return
        self.out.lines(usage_lines(report))

    def signin(self, _arg: str) -> None:
        if self.ctx.sign_in is None:
            self.ctx.ui.error(
                "No Switchboard Cloud gateway: start with --gateway URL (or SWITCHBOARD_GATEWAY_URL)."
            )
            return
        self.ctx.sign_in.sign_in()

    def signout(self, _arg: str) -> None:
        if self.ctx.sign_in is None:
            self.ctx.ui.error("Not signed in: no Switchboard Cloud gateway is configured.")
            return
        self.ctx.sign_in.sign_out()

    def rate(self, arg: str) -> None:
        ratings: dict[str, Rating | None] = {"up": "up", "down": "down", "clear": None}
        if arg.lower() not in ratings:
            self.ctx.ui.error("Rate how? Usage: /rate up, /rate down or /rate clear (or /good, /bad).")
            return
        conversation_id = self.ctx.state.conversation_id
        if conversation_id is None:
            self.ctx.ui.error("No answer to rate yet: /rate applies to the last answer of this conversation.")
            return
        conversation = self.ctx.call(self.ctx.session.conversation(conversation_id))
        answer = next((t for t in reversed(conversation.turns) if t.role == "assistant"), None)
        if answer is None:
            self.ctx.ui.error("No answer to rate yet in this conversation.")
            return
        result = self.ctx.call(self.ctx.session.feedback(conversation_id, answer.id, ratings[arg.lower()]))
        self.out.line(rating_line(result, answer))

    def help(self, _arg: str) -> None:
        self.out.lines(HELP)

    def quit(self, _arg: str) -> None:
        raise Quit


def _message(exc: BaseException) -> str:
    if isinstance(exc, UsageError):
        return str(exc)
    return describe(exc, repl=True)


class LineHistory:
    """readline's line editing and a persistent history, when readline exists and stdin is a terminal."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._readline = _readline() if path is not None else None

    def load(self) -> None:
        if self._readline is None or self._path is None:
            return
        with contextlib.suppress(OSError):
            self._readline.read_history_file(self._path)
        self._readline.set_history_length(1000)

    def save(self) -> None:
        if self._readline is None or self._path is None:
            return
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._readline.write_history_file(self._path)

    def had_text(self) -> bool:
        """Whether the line being edited when Ctrl-C came held any text."""
        return bool(self.line_buffer().strip())

    def line_buffer(self) -> str:
        """What has been typed at the prompt so far ("" without readline)."""
        return self._readline.get_line_buffer() if self._readline is not None else ""


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:
        return None
    return readline
