"""Shared fixtures: the fake Anthropic API on 127.0.0.1 and the real server process driven over stdio."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from switchboard.fakeapi import FakeAnthropic
from switchboard.rpc import raw_json_converter

TEST_KEY = "sk-ant-test-SECRETKEY-0123456789abcdef"
# pytest-xdist workers per core for `-n auto` (pyproject's addopts): the tests mostly wait on subprocesses
# and sockets, so two per core keep the cores busy without starving the timing-sensitive ones.
WORKERS_PER_CORE = 2


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Workers for the whole suite; when only named files run, no more than one per file, and a single
    file runs in this process (no worker start-up, and `--pdb` or `-s` behave as usual)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    workers = WORKERS_PER_CORE * (os.cpu_count() or 1)
    files = {str(arg).split("::")[0] for arg in config.args}
    if files and all(Path(name).is_file() for name in files):
        workers = min(workers, len(files))
    return workers if workers > 1 else 0


@pytest.fixture
def fake_api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(host="127.0.0.1", port=0) as api:
        yield api


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> str:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder.as_uri()


def server_env(state_dir: Path, fake_api: FakeAnthropic | None, **overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=str(state_dir),
        SWITCHBOARD_CONFIG_DIR=str(state_dir / "config"),
        SWITCHBOARD_MAX_RETRIES="2",
        SWITCHBOARD_REQUEST_TIMEOUT="5",
        ANTHROPIC_API_KEY=TEST_KEY,
        PYTHONUNBUFFERED="1",
    )
    if fake_api is not None:
        env["ANTHROPIC_BASE_URL"] = fake_api.base_url
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Session:
    """A test client talking to one real `switchboard serve` process."""

    client: LanguageClient
    workspace: str
    progress: dict[str | int, list[dict[str, Any]]] = field(default_factory=dict)
    notifications: list[tuple[str, Any]] = field(default_factory=list)
    _tokens: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def request(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        return await asyncio.wait_for(self.client.protocol.send_request_async(method, params), timeout)

    async def error(self, method: str, params: Any = None) -> JsonRpcException:
        with pytest.raises(JsonRpcException) as caught:
            await self.request(method, params)
        return caught.value

    def new_token(self) -> str:
        return f"chat-{next(self._tokens)}"

    async def chat(self, prompt: str, **params: Any) -> dict[str, Any]:
        params.setdefault("workspaceUri", self.workspace)
        params.setdefault("workDoneToken", self.new_token())
        return await self.request("switchboard/chat", {"prompt": prompt, **params})

    def reports(self, token: str | int) -> list[dict[str, Any]]:
        return self.progress.get(token, [])

    def streamed_text(self, token: str | int) -> str:
        return "".join(r["text"] for r in self.reports(token) if r.get("type") == "text")

    def notified(self, method: str) -> list[Any]:
        return [params for name, params in self.notifications if name == method]


def make_client(session_holder: list[Session]) -> LanguageClient:
    client = LanguageClient(converter_factory=raw_json_converter)

    @client.feature(lsp.PROGRESS)
    def on_progress(params: lsp.ProgressParams) -> None:  # pyright: ignore[reportUnusedFunction]
        session_holder[0].progress.setdefault(params.token, []).append(params.value)

    for method in ("switchboard/usageChanged", "switchboard/modelChanged"):

        def on_notification(params: Any, method: str = method) -> None:
            session_holder[0].notifications.append((method, params))

        client.feature(method)(on_notification)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)
    def on_show_message(params: Any) -> None:  # pyright: ignore[reportUnusedFunction]
        session_holder[0].notifications.append((lsp.WINDOW_SHOW_MESSAGE, params))

    @client.feature(lsp.WINDOW_LOG_MESSAGE)
    def on_log_message(params: Any) -> None:  # pyright: ignore[reportUnusedFunction]
        session_holder[0].notifications.append((lsp.WINDOW_LOG_MESSAGE, params))

    return client


SessionFactory = Callable[..., Awaitable[Session]]


@pytest_asyncio.fixture
async def start_server(state_dir: Path, workspace: str) -> AsyncIterator[SessionFactory]:
    """Starts `switchboard serve` processes; every one is shut down at the end of the test."""
    sessions: list[Session] = []

    async def start(
        fake: FakeAnthropic | None,
        *,
        env: dict[str, str] | None = None,
        init_options: dict[str, Any] | None = None,
        folders: list[str] | None = None,
        command: list[str] | None = None,
        **env_overrides: str | None,
    ) -> Session:
        """`command`: the server's arguments to Python, `-m switchboard serve` unless given."""
        holder: list[Session] = []
        client = make_client(holder)
        session = Session(client=client, workspace=workspace)
        holder.append(session)
        await client.start_io(
            sys.executable,
            *(command or ["-m", "switchboard", "serve"]),
            env=env or server_env(state_dir, fake, **env_overrides),
        )
        uris = folders if folders is not None else [workspace]
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(
                    window=lsp.WindowClientCapabilities(work_done_progress=True)
                ),
                root_uri=uris[0] if uris else None,
                workspace_folders=[lsp.WorkspaceFolder(uri=u, name=Path(u).name) for u in uris],
                initialization_options=init_options,
            )
        )
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        await stop(session)


async def stop(session: Session) -> None:
    try:
        await asyncio.wait_for(session.client.shutdown_session(), 10)
    except Exception:
        # A server that does not exit is killed: waiting on it unbounded hung a whole xdist worker.
        try:
            await asyncio.wait_for(session.client.stop(), 10)
        except TimeoutError:
            server = session.client._server  # pyright: ignore[reportPrivateUsage]
            if server is not None and server.returncode is None:
                server.kill()
                await server.wait()
            raise
