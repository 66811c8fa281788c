"""`switchboard chat`: start `switchboard serve`, talk to it like an editor does, in a REPL or one shot."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Generator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from switchboard.config import Settings

from .charges import Charges
from .chatting import ChatState, Chatter
from .client import CREDENTIALS_CHANGED, SIGN_IN_CODE, TURN_CHARGED, ServerCommand, SwitchboardClient
from .console import Console, Ui
from .context import Context, UsageError
from .credentials import StoredSession
from .errors import describe
from .loop import LoopThread, wait
from .preflight import EXIT_USAGE, GATEWAY_ENV, Options
from .render import model_name
from .repl import Repl
from .session import Session, Workspace
from .signin import SignIn
from .stream import StreamPrinter

OFFLINE_KEY = "sk-ant-offline-simulated-answers"
OFFLINE_BANNER = "Offline mode: answers are SIMULATED by the bundled fake Anthropic API; no model is called."
CLOSE_SECONDS = 20.0


def run(ui: Ui, options: Options, offline: bool) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C must cancel, even if inherited ignored
    with ExitStack() as stack:
        return _run(ui, options, offline, stack)


def _run(ui: Ui, options: Options, offline: bool, stack: ExitStack) -> int:
    settings = Settings.from_env()
    env = dict(os.environ)
    if offline:
        env.update(stack.enter_context(_offline_api()))
    _log_to_file(settings.log_dir / "chat-client.log")
    bridge = LoopThread()
    bridge.start()
    stack.callback(bridge.stop)
    aside = ui.err if options.one_shot else ui.out
    printer = StreamPrinter(ui.out, aside)
    client = SwitchboardClient(printer.on_progress, lambda message: _server_message(ui, message))
    if options.gateway is not None:
        env[GATEWAY_ENV] = options.gateway
    session = Session(client, Workspace(options.workspace), _server_command(settings, env))
    stack.callback(_close, bridge, session)
    context = Context(
        ui, bridge, session, Chatter(bridge, session, printer), ChatState(model_override=options.model)
    )
    if options.gateway is not None:
        stored = StoredSession(options.gateway)
        context.sign_in = SignIn(bridge, session, stored, aside, ui.first_time, repl=not options.one_shot)
        client.listen(SIGN_IN_CODE, context.sign_in.on_code)
        client.listen(CREDENTIALS_CHANGED, context.sign_in.on_credentials)
        context.charges = Charges(aside)
        client.listen(TURN_CHARGED, context.charges.on_charged)
    return _start(context, options, offline, aside, settings)


def _server_message(ui: Ui, message: str) -> None:
    """`window/showMessage`; one repeating a note just printed (a session that ended) is not shown again."""
    if ui.first_time(message):
        ui.note(f"server: {message}")


def _server_command(settings: Settings, env: dict[str, str]) -> ServerCommand:
    """`switchboard serve` with this Python; its stderr (a copy of its log) goes to a file, out of sight."""
    return ServerCommand(
        argv=[sys.executable, "-m", "switchboard", "serve"],
        env=env,
        stderr_path=settings.log_dir / "chat-server.stderr.log",
    )


def _start(context: Context, options: Options, offline: bool, aside: Console, settings: Settings) -> int:
    ui = context.ui
    try:
        context.call(context.session.start())
        if context.sign_in is not None:
            context.sign_in.resume()  # the stored session, if any: chats then go to the gateway
        current = _check_model(context, options.model)
        if options.conversation:
            context.state.conversation_id = context.find_conversation(options.conversation)
    except UsageError as exc:
        ui.error(str(exc))
        return EXIT_USAGE
    except Exception as exc:
        ui.error(describe(exc, repl=not options.one_shot))
        return 1
    if offline:
        aside.line(OFFLINE_BANNER, "yellow")
    if options.one_shot:
        return context.report(context.chatter.ask(context.state, options.prompt), ui.err, repl=False)
    return _repl(context, options, current, settings)


def _repl(context: Context, options: Options, current: str, settings: Settings) -> int:
    _welcome(context, current)
    history = settings.state_dir / "chat_history" if sys.stdin.isatty() else None
    repl = Repl(context, history)
    if context.state.conversation_id:
        repl.handle(f"/open {context.state.conversation_id}")
    return repl.run()


def _check_model(context: Context, model: str | None) -> str:
    """The model the session starts with; a `--model` the server does not offer is refused up front."""
    result = context.call(context.session.models())
    ids = [info.id for info in result.models]
    if model is not None and model not in ids:
        raise UsageError(f"Unknown model {model!r} (--model). Choose one of: {', '.join(ids)}.")
    return model or result.selected


def _welcome(context: Context, model: str) -> None:
    workspace = context.session.workspace.path
    context.ui.out.line(
        f"Switchboard chat · {workspace} · {model_name(model)} · /help for commands, Ctrl-D to leave", "dim"
    )


@contextmanager
def _offline_api() -> Generator[dict[str, str]]:
    """The bundled fake Anthropic API on a free loopback port, in this process; the server's env for it."""
    from switchboard.fakeapi import FakeAnthropic

    with FakeAnthropic(host="127.0.0.1", port=0) as fake:
        yield {"ANTHROPIC_BASE_URL": fake.base_url, "ANTHROPIC_API_KEY": OFFLINE_KEY}


def _close(bridge: LoopThread, session: Session) -> None:
    with suppress(Exception, KeyboardInterrupt):
        wait(bridge.submit(session.close()), CLOSE_SECONDS)


def _log_to_file(path: Path) -> None:
    """The client's own warnings (pygls's, mostly) go to a file, not into the conversation."""
    root = logging.getLogger()
    handler: logging.Handler
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
