"""The Switchboard language server: composes the feature modules over pygls."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types as lsp
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer

from switchboard import __version__
from switchboard.config import Settings
from switchboard.logs import scrubber
from switchboard.rpc import SwitchboardProtocol, raw_json_converter

if TYPE_CHECKING:
    from switchboard.providers.anthropic_api import AnthropicProvider
    from switchboard.store import ConversationStore

log = logging.getLogger(__name__)


class SwitchboardServer(LanguageServer):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            "switchboard",
            __version__,
            protocol_cls=SwitchboardProtocol,
            converter_factory=raw_json_converter,
        )
        self.settings = settings
        self._api_key = settings.api_key
        self._store: ConversationStore | None = None
        self._provider: AnthropicProvider | None = None
        self.init_options: dict[str, Any] = {}
        # workspace/executeCommand handlers, filled in when the features load.
        self.commands: dict[str, Callable[..., Any]] = {}

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors outside a request (a malformed notification, a failed send) go to the log and the
        editor's output channel, not to a pop-up: the user cannot act on them, and pygls' text is a raw
        exception. Request errors are answered by the request itself (see `SwitchboardProtocol`)."""
        if source is FeatureRequestError:
            return
        log.error("error outside a request (%s): %s", getattr(source, "__name__", source), error)
        self.window_log_message(
            lsp.LogMessageParams(
                type=lsp.MessageType.Error,
                message="Switchboard ignored a message it could not handle; the server log has the details.",
            )
        )

    # --- services the features share ----------------------------------------------------------

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            from switchboard.store import ConversationStore

            self._store = ConversationStore(self.settings.conversations_db)
        return self._store

    @property
    def api_key(self) -> str | None:
        return self._api_key

    def use_api_key(self, key: str | None) -> None:
        """An editor may pass the key from its secret store; it overrides the environment's."""
        if key and key != self._api_key:
            scrubber.add(key)
            self._api_key = key
            self._provider = None

    def provider(self) -> AnthropicProvider:
        if self._api_key is None:
            raise RuntimeError("no API key")
        if self._provider is None:
            from switchboard.providers.anthropic_api import AnthropicProvider

            self._provider = AnthropicProvider(
                api_key=self._api_key,
                base_url=self.settings.base_url,
                timeout=self.settings.request_timeout,
                max_retries=self.settings.max_retries,
            )
        return self._provider

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

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _usable_uri(uri: str | None) -> bool:
    """A URI that can be stored: a string without lone surrogates (which cannot be encoded)."""
    if not uri:
        return False
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def create_server(settings: Settings) -> SwitchboardServer:
    """The server with only its lifecycle wired: the features load right after `initialize` is answered."""
    from switchboard.features.lifecycle import LifecycleFeature

    server = SwitchboardServer(settings)
    scrubber.add(settings.api_key)
    LifecycleFeature(server).register()
    return server
