"""Initialization: what an editor may pass at start (its stored API key), and nothing that moves state."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types as lsp

from switchboard.providers.anthropic_api import load_sdk

from .account import AccountFeature
from .base import Feature, plain

log = logging.getLogger(__name__)


class LifecycleFeature(Feature):
    def __init__(self, server: Any, account: AccountFeature) -> None:
        super().__init__(server)
        self.account = account
        self._warmup: asyncio.Future[Any] | None = None

    def register(self) -> None:
        self.server.feature(lsp.INITIALIZE)(plain(self.on_initialize))
        self.server.feature(lsp.INITIALIZED)(plain(self.on_initialized))
        self.server.feature(lsp.SHUTDOWN)(plain(self.on_shutdown))

    def on_initialize(self, params: lsp.InitializeParams) -> None:
        options: Any = params.initialization_options
        if not isinstance(options, dict):
            return
        self.server.init_options = options
        api_key = options.get("apiKey")
        if isinstance(api_key, str) and api_key.strip():
            self.server.use_api_key(api_key.strip())
        entitlement = options.get("entitlement")
        if isinstance(entitlement, str):
            self.account.use_token(entitlement)
        log.info("Initialized (API key %s)", "set" if self.server.api_key else "missing")

    async def on_initialized(self, _params: Any) -> None:
        # Warm up the SDK import in the background so the first chat starts at full speed.
        self._warmup = asyncio.ensure_future(load_sdk())
        self.account.schedule_rollover()

    def on_shutdown(self, _params: Any) -> None:
        self.account.close()
        self.server.close()
