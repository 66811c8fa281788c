"""A typed session with one `switchboard serve` process: each method is one protocol request.

All methods are coroutines that run on the client's event loop (see `loop.LoopThread`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp

from switchboard import __version__
from switchboard.protocol import methods
from switchboard.protocol.messages import (
    ChatParams,
    ChatResult,
    ConversationParams,
    ConversationResult,
    ConversationsParams,
    ConversationsResult,
    Empty,
    ModelsParams,
    ModelsResult,
    ProgressToken,
    SelectModelParams,
    SelectModelResult,
    SignInParams,
    SignInResult,
    UsageReport,
    Wire,
)

from .client import ServerCommand, SwitchboardClient
from .errors import ServerStopped

R = TypeVar("R", bound=Wire)
STARTUP_SECONDS = 30.0
REQUEST_SECONDS = 30.0
SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True)
class Workspace:
    path: Path

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)


class Session:
    def __init__(self, client: SwitchboardClient, workspace: Workspace, command: ServerCommand) -> None:
        self.client = client
        self.workspace = workspace
        self._command = command

    async def start(self) -> None:
        """Starts the server and initializes it (call `close` afterwards even if this fails)."""
        await self.client.start_server(self._command)
        await asyncio.wait_for(self._initialize(), STARTUP_SECONDS)

    async def _initialize(self) -> None:
        folder = lsp.WorkspaceFolder(uri=self.workspace.uri, name=self.workspace.name)
        params = lsp.InitializeParams(
            process_id=os.getpid(),
            client_info=lsp.ClientInfo(name="switchboard chat", version=__version__),
            capabilities=lsp.ClientCapabilities(window=lsp.WindowClientCapabilities(work_done_progress=True)),
            root_uri=self.workspace.uri,
            workspace_folders=[folder],
        )
        await self._guard(self.client.initialize_async(params))
        self.client.initialized(lsp.InitializedParams())

    # --- requests -----------------------------------------------------------------------------------

    async def models(self) -> ModelsResult:
        return await self._request(
            methods.MODELS.method, ModelsParams(workspace_uri=self.workspace.uri), ModelsResult
        )

    async def select_model(self, model_id: str) -> SelectModelResult:
        params = SelectModelParams(workspace_uri=self.workspace.uri, model_id=model_id)
        return await self._request(methods.SELECT_MODEL.method, params, SelectModelResult)

    async def chat(self, params: ChatParams, msg_id: str) -> ChatResult:
        """No time limit: answers may stream for minutes. Ctrl-C cancels (see `cancel_chat`)."""
        return await self._request(methods.CHAT.method, params, ChatResult, msg_id=msg_id, timeout=None)

    async def conversations(self) -> ConversationsResult:
        params = ConversationsParams(workspace_uri=self.workspace.uri)
        return await self._request(methods.CONVERSATIONS.method, params, ConversationsResult)

    async def conversation(self, conversation_id: str) -> ConversationResult:
        params = ConversationParams(workspace_uri=self.workspace.uri, conversation_id=conversation_id)
        return await self._request(methods.CONVERSATION.method, params, ConversationResult)

    async def usage(self) -> UsageReport:
        return await self._request(methods.USAGE.method, Empty(), UsageReport)

    async def sign_in(self, params: dict[str, str], msg_id: str) -> SignInResult:
        """No time limit: the device flow waits for the person at the browser. Ctrl-C cancels it."""
        payload = SignInParams.model_validate(params)
        return await self._request(methods.SIGN_IN.method, payload, SignInResult, msg_id=msg_id, timeout=None)

    async def sign_out(self) -> UsageReport:
        return await self._request(methods.SIGN_OUT.method, Empty(), UsageReport)

    # --- cancelling -----------------------------------------------------------------------------------

    async def cancel_request(self, msg_id: str) -> None:
        """JSON-RPC `$/cancelRequest`: the server stops the request and answers it with -32800."""
        if self.client.running:
            self.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))

    async def cancel_progress(self, token: ProgressToken) -> None:
        """`window/workDoneProgress/cancel`: what an editor's Cancel button on the progress sends."""
        if self.client.running:
            params = lsp.WorkDoneProgressCancelParams(token=token)
            self.client.protocol.notify(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL, params)

    # --- plumbing -------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        params: Wire,
        result: type[R],
        *,
        msg_id: str | None = None,
        timeout: float | None = REQUEST_SECONDS,
    ) -> R:
        if not self.client.running:
            raise self._stopped()
        payload = params.model_dump(mode="json", by_alias=True, exclude_none=True)
        future = self.client.protocol.send_request_async(method, payload, msg_id=msg_id)
        # shield: a timeout must not cancel pygls's future (its late response would then fail to resolve it).
        raw = await self._guard(asyncio.wait_for(asyncio.shield(future), timeout))
        return result.model_validate(raw)

    async def _guard(self, pending: Awaitable[Any]) -> Any:
        """Awaits a request; a server that exits meanwhile becomes `ServerStopped`."""
        try:
            return await pending
        except RuntimeError as exc:
            if self.client.running:
                raise
            raise self._stopped() from exc

    def _stopped(self) -> ServerStopped:
        process = self.client.process
        code = process.returncode if process is not None else None
        detail = _last_line(self._command.stderr_path)
        where = f" Details: {self._command.stderr_path}" if self._command.stderr_path else ""
        return ServerStopped(
            f"The Switchboard server stopped unexpectedly (exit code {code})"
            + (f": {detail}" if detail else ".")
            + where
        )

    async def close(self) -> None:
        """shutdown + exit, then make sure the process is gone (killed if it does not leave)."""
        client = self.client
        if client.running:
            with suppress(Exception):
                await asyncio.wait_for(client.shutdown_async(None), SHUTDOWN_SECONDS)
                client.exit(None)
        await self._reap()

    async def _reap(self) -> None:
        process = self.client.process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), SHUTDOWN_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
        with suppress(Exception):
            await asyncio.wait_for(self.client.stop(), SHUTDOWN_SECONDS)


def _last_line(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
