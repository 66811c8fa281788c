"""Start-up and shut-down: what an editor may pass at start, and loading the features.

`initialize` is answered before the feature modules (pydantic models, plans, SQLite) are imported: they
load right after the answer is written and before the next message is read, so an editor sees the server
ready sooner and no request can arrive before its handler exists.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from switchboard.protocol.names import COMMANDS

from .feature import Feature, plain
from .host import Editor, Services

if TYPE_CHECKING:
    from . import InstalledFeatures

log = logging.getLogger(__name__)


def gateway_client_id(info: lsp.ClientInfo | None) -> str:
    """The gateway's public OAuth client id for the editor that started us (docs/gateway.md)."""
    name = (info.name if info is not None else "").lower()
    if "vim" in name:
        return "switchboard-nvim"
    if "switchboard chat" in name or "terminal" in name:
        return "switchboard-terminal"
    return "switchboard-vscode"


class LifecycleFeature(Feature):
    def __init__(self, editor: Editor, services: Services) -> None:
        super().__init__(editor)
        self.services = services
        self._init_options: dict[str, Any] = {}
        # workspace/executeCommand handlers by name, filled in when the features load.
        self._commands: dict[str, Callable[..., Any]] = {}
        self._installed: InstalledFeatures | None = None
        self._warmup: asyncio.Future[Any] | None = None
        self._closing: asyncio.Future[None] | None = None

    def register(self) -> None:
        self.editor.feature(lsp.INITIALIZE)(plain(self.on_initialize))
        self.editor.feature(lsp.INITIALIZED)(plain(self.on_initialized))
        self.editor.feature(lsp.SHUTDOWN)(plain(self.on_shutdown))
        # Commands are announced in the initialize answer, so their names are registered now.
        for name in COMMANDS:
            self.editor.command(name)(self._command(name))

    def _command(self, name: str) -> Callable[..., Any]:
        async def run(*args: Any) -> Any:
            result = self._commands[name](*args)
            return await result if inspect.isawaitable(result) else result

        return run

    def on_initialize(self, params: lsp.InitializeParams) -> None:
        # Runs once: the transport's lifecycle gate refuses a second `initialize`.
        options: Any = params.initialization_options
        self.services.upstream.client_id = gateway_client_id(params.client_info)
        if isinstance(options, dict):
            self._init_options = options
            api_key = options.get("apiKey")
            if isinstance(api_key, str) and api_key.strip():
                self.services.upstream.use_api_key(api_key.strip())
        asyncio.get_running_loop().call_soon(self._install)
        log.info("Initialized (API key %s)", "set" if self.services.upstream.ready else "missing")

    def _install(self) -> None:
        from switchboard.features import install_features

        self._installed = install_features(self.editor, self.services, self._init_options, self._commands)
        gc.freeze()  # what start-up loaded lives as long as the server: keep it out of collections

    async def on_initialized(self, _params: Any) -> None:
        from switchboard.providers.anthropic_api import load_sdk

        # Warm up the SDK import in the background so the first chat starts at full speed.
        self._warmup = asyncio.ensure_future(load_sdk())
        if self._installed is not None:
            self._installed.chat.warm_up()
            self._installed.account.schedule_rollover()
        if (refused := self.services.settings.gateway_url_refused) is not None:
            log.warning("%s", refused)
            self.editor.show_message(refused, lsp.MessageType.Error)

    def on_shutdown(self, _params: Any) -> None:
        """Closes the stores at once and starts closing the HTTP clients. Not awaited here: pygls counts a
        shutdown as done only when this returns, and an `exit` sent right behind it must still exit 0."""
        if self._installed is not None:
            self._installed.account.close()
        self.services.close()
        self._closing = asyncio.ensure_future(self._close_clients())

    async def _close_clients(self) -> None:
        try:
            await self.services.upstream.aclose()
        except Exception:  # a close that fails must not keep the editor from shutting us down
            log.exception("Could not close the HTTP clients")
