"""The pygls language client that starts `switchboard serve` and talks to it over stdio.

Unlike `LanguageClient.start_io`, the server's stderr goes to a file (not an unread pipe that could fill
up and stall the server), and the server runs in its own session so the terminal's Ctrl-C reaches only
this client, which turns it into a cancel request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lsprotocol import types as lsp
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

from switchboard import __version__
from switchboard.rpc import raw_json_converter

log = logging.getLogger(__name__)

ProgressListener = Callable[[lsp.ProgressToken, Any], None]
SIGN_IN_CODE = "switchboard/signInCode"
CREDENTIALS_CHANGED = "switchboard/credentialsChanged"
TURN_CHARGED = "switchboard/turnCharged"
IGNORED_NOTIFICATIONS = (
    "switchboard/usageChanged",
    "switchboard/modelChanged",
    lsp.WINDOW_LOG_MESSAGE,
    lsp.TELEMETRY_EVENT,
)


@dataclass(frozen=True)
class ServerCommand:
    argv: Sequence[str]
    env: Mapping[str, str]
    stderr_path: Path | None  # None: discard the server's stderr


class SwitchboardClient(LanguageClient):
    def __init__(self, on_progress: ProgressListener, on_message: Callable[[str], None]) -> None:
        super().__init__("switchboard-chat", __version__, converter_factory=raw_json_converter)
        self.process: asyncio.subprocess.Process | None = None
        self._listeners: dict[str, Callable[[Any], None]] = {}
        self._register(on_progress, on_message)
        for method in (SIGN_IN_CODE, CREDENTIALS_CHANGED, TURN_CHARGED):
            self.feature(method)(self._dispatch(method))

    def listen(self, method: str, listener: Callable[[Any], None]) -> None:
        """Calls `listener` with the params of every `method` notification (on the loop thread)."""
        self._listeners[method] = listener

    def _dispatch(self, method: str) -> Callable[[Any], None]:
        def handle(params: Any) -> None:
            listener = self._listeners.get(method)
            if listener is not None:
                listener(params)

        return handle

    def _register(self, on_progress: ProgressListener, on_message: Callable[[str], None]) -> None:
        def progress(params: lsp.ProgressParams) -> None:
            on_progress(params.token, params.value)

        def show_message(params: lsp.ShowMessageParams) -> None:
            on_message(params.message)

        def ignore(_params: Any) -> None:
            return None

        self.feature(lsp.PROGRESS)(progress)
        self.feature(lsp.WINDOW_SHOW_MESSAGE)(show_message)
        for method in IGNORED_NOTIFICATIONS:
            self.feature(method)(ignore)

    async def start_server(self, command: ServerCommand) -> asyncio.subprocess.Process:
        with _stderr_target(command.stderr_path) as stderr:
            process = await asyncio.create_subprocess_exec(
                *command.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=dict(command.env),
                start_new_session=True,
            )
        if process.stdin is None or process.stdout is None:
            raise RuntimeError("the server process has no stdio pipes")
        self.protocol.set_writer(process.stdin)
        reader = run_async(
            stop_event=self._stop_event,
            reader=process.stdout,
            protocol=self.protocol,
            logger=log,
            error_handler=self.report_server_error,
        )
        self._server = process
        self._async_tasks.extend([asyncio.create_task(reader), asyncio.create_task(self._server_exit())])
        self.process = process
        return process

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


@contextmanager
def _stderr_target(path: Path | None) -> Generator[int | IO[bytes]]:
    """The server's stderr: a file under the state directory, or /dev/null if that cannot be opened."""
    if path is None:
        yield asyncio.subprocess.DEVNULL
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = path.open("wb")
    except OSError:
        yield asyncio.subprocess.DEVNULL
        return
    with target:  # the child keeps its own copy of the descriptor
        yield target
