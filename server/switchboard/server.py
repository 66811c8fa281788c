"""The Switchboard language server: the editor connection over pygls that features register on.

It knows nothing of the features; `switchboard.app` composes them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any, BinaryIO

from lsprotocol import types as lsp
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer

from switchboard import __version__
from switchboard.rpc import SwitchboardProtocol, raw_json_converter

log = logging.getLogger(__name__)


class SwitchboardServer(LanguageServer):
    """Implements `switchboard.features.host.Editor`."""

    def __init__(self) -> None:
        super().__init__(
            "switchboard",
            __version__,
            protocol_cls=SwitchboardProtocol,
            converter_factory=raw_json_converter,
        )
        self._reporting_error = False

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors outside a request (a malformed notification, a failed send) go to the log and the
        editor's output channel, not to a pop-up: the user cannot act on them, and pygls' text is a raw
        exception. Request errors are answered by the request itself (see `SwitchboardProtocol`)."""
        if source is FeatureRequestError:
            return
        log.error("error outside a request (%s): %s", getattr(source, "__name__", source), error)
        if self._reporting_error:
            # Sending the report failed too (stdout already closed, e.g. a send racing `exit`): telling
            # the editor would fail again and recurse, a traceback on stderr each time until that pipe
            # filled and the process hung instead of exiting.
            return
        self._reporting_error = True
        try:
            self.window_log_message(
                lsp.LogMessageParams(
                    type=lsp.MessageType.Error,
                    message=(
                        "Switchboard ignored a message it could not handle; the server log has the details."
                    ),
                )
            )
        finally:
            self._reporting_error = False

    # --- what features use (`Editor`) -----------------------------------------------------------

    def default_workspace(self) -> str | None:
        """The first usable workspace folder (else the root) the editor opened, if any."""
        try:
            workspace = self.workspace
        except RuntimeError:
            return None
        candidates = [folder.uri for folder in workspace.folders.values()] + [workspace.root_uri]
        return next((uri for uri in candidates if _usable_uri(uri)), None)

    def send_progress(self, token: lsp.ProgressToken, value: dict[str, Any]) -> None:
        self.protocol.notify(lsp.PROGRESS, lsp.ProgressParams(token=token, value=value))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.protocol.notify(method, params)

    def show_message(self, message: str, kind: lsp.MessageType) -> None:
        self.protocol.notify(lsp.WINDOW_SHOW_MESSAGE, lsp.ShowMessageParams(type=kind, message=message))

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serves LSP over stdio with Switchboard's own frame reader (see `switchboard.transport`).

        `exit` raises SystemExit with pygls' code (0 after `shutdown`, else 1): it is let through, so
        that code becomes the process's."""
        from pygls.io_ import StdoutWriter

        from switchboard.transport import serve

        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(serve(self._stop_event, stdin or sys.stdin.buffer, self.protocol))
        except BrokenPipeError:
            log.error("The client closed the connection; shutting down.")
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()


def _usable_uri(uri: str | None) -> bool:
    """A URI that can be stored: a string without lone surrogates (which cannot be encoded)."""
    if not uri:
        return False
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
