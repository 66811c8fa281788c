"""What the REPL and one-shot mode share: the UI, the loop thread, the session and the chat state."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from switchboard.protocol.messages import ConversationsResult

from .charges import Charges
from .chatting import ChatState, Chatter, Outcome
from .console import Console, Ui
from .errors import describe
from .loop import LoopThread
from .render import credits, footer
from .session import Session
from .signin import SignIn

T = TypeVar("T")


class UsageError(Exception):
    """A value the user gave (a model id, a conversation id) that cannot be used."""


class ConversationLookupError(UsageError, LookupError):
    pass


@dataclass
class Context:
    ui: Ui
    bridge: LoopThread
    session: Session
    chatter: Chatter
    state: ChatState
    sign_in: SignIn | None = None  # with a gateway configured (--gateway)
    charges: Charges | None = None  # the gateway's charges that come after an answer ended

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """One request, waited for on the main thread."""
        return self.bridge.call(coro)

    def find_conversation(self, wanted: str) -> str:
        """The full id of this workspace's conversation `wanted` names (exactly, or by a unique prefix)."""
        return match_conversation(self.call(self.session.conversations()), wanted)

    def report(self, outcome: Outcome, aside: Console, *, repl: bool) -> int:
        """Prints how a chat ended (footer, cancel or error); returns the matching exit status."""
        if outcome.result is not None:
            aside.line(footer(outcome.result, how_to_continue=not repl), "dim")
            return 0
        if outcome.cancelled:
            if not outcome.confirmed:
                unconfirmed = " (the server did not confirm in time; the answer may still finish in history)"
                aside.line("Cancelled." + unconfirmed, "dim")
            else:
                aside.line("Cancelled" + self._charge(outcome, "stopped") + ".", "dim")
            self._wait_for_charges(repl=repl)
            return 130
        error = outcome.error if outcome.error is not None else RuntimeError("no answer")
        self.ui.error(describe(error, repl=repl, chat=True))
        if outcome.started and (charge := self._charge(outcome, "cut-off")):
            aside.line("The cut-off answer" + charge + ".", "dim")
            self._wait_for_charges(repl=repl)
        return 1

    def _wait_for_charges(self, *, repl: bool) -> None:
        """One shot, the program leaves next: wait a little for a pending charge to be printed."""
        if not repl and self.charges is not None:
            self.charges.wait()

    def _charge(self, outcome: Outcome, what: str) -> str:
        """Signed in, the gateway charges a stopped or cut-off answer for what reached it, and says how
        much only after the answer ended: ` · charge pending` (the figure is printed when it comes), or
        ` · 0.42 credits` if it came already. Empty when nothing is charged here."""
        signed_in = self.sign_in is not None and self.sign_in.signed_in
        if not signed_in or self.charges is None or outcome.turn_id is None:
            return ""
        charged = self.charges.expect(outcome.turn_id, what)
        return f" · {credits(charged)}" if charged is not None else " · charge pending"


def match_conversation(conversations: ConversationsResult, wanted: str) -> str:
    wanted = wanted.strip()
    ids = [conversation.id for conversation in conversations.conversations]
    if wanted in ids:
        return wanted
    matches = [conversation_id for conversation_id in ids if conversation_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConversationLookupError(f"No conversation {wanted!r} in this workspace (/history lists them).")
    shown = ", ".join(match[:12] for match in matches[:5])
    raise ConversationLookupError(
        f"{wanted!r} matches {len(matches)} conversations ({shown}); type more of the id."
    )
