"""What a feature gets from its host: the editor connection (a narrow protocol) and the shared services.

Features never import the language server. The server implements `Editor`; `Services` is built by the
composition root (`switchboard.app`), so a hosted mode or a test can hand features other parts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types as lsp

if TYPE_CHECKING:
    from switchboard.config import Settings
    from switchboard.providers.upstream import Upstream
    from switchboard.store import ConversationStore

Handler = Callable[..., Any]


class Editor(Protocol):
    """The connection to the editor: register handlers, send it messages, ask what it opened."""

    def feature(self, feature_name: str, options: Any = None) -> Callable[[Handler], Handler]: ...

    def command(self, command_name: str) -> Callable[[Handler], Handler]: ...

    def send_progress(self, token: lsp.ProgressToken, value: dict[str, Any]) -> None: ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def show_message(self, message: str, kind: lsp.MessageType) -> None: ...

    def default_workspace(self) -> str | None:
        """The first usable workspace folder (else the root) the editor opened, if any."""
        ...


def utc_today() -> date:
    return datetime.now(UTC).date()


class Services:
    """Configuration, the conversation store (opened on first use), the way to the models and the calendar
    (today's UTC date: when a model is retired)."""

    def __init__(self, settings: Settings, upstream: Upstream, today: Callable[[], date] = utc_today) -> None:
        self.settings = settings
        self.upstream = upstream
        self.today = today
        self._store: ConversationStore | None = None

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            from switchboard.store import ConversationStore

            self._store = ConversationStore(self.settings.conversations_db)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
