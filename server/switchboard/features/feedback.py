"""Thumbs up and down on answers (`switchboard/feedback`), and what Auto learns from them.

Every Auto answer can earn one label (`routing/learning.py`): from its rating, from a retry of it, or from
the next message in its conversation. `AutoFeedback` recomputes an answer's label whenever one of those
changes and moves the workspace's threshold shift by the difference, so feedback is idempotent and a
cleared rating takes its effect back. docs/router.md, "Learning online", explains the numbers.
"""

from __future__ import annotations

from switchboard.protocol import methods
from switchboard.protocol.errors import ConversationNotFound, InvalidParams
from switchboard.protocol.messages import (
    AutoForYou,
    AutoSignals,
    FeedbackParams,
    FeedbackResult,
    InvalidParamsData,
    Rating,
)
from switchboard.routing.learning import FollowUp, Judgement, bounded, decayed, direction, judge
from switchboard.store import AutoMonth, ShiftState, StoredLabel, StoredTurn

from .base import Feature, register_request
from .host import Editor, Services


class AutoFeedback:
    """Auto's per-workspace learning state: labels on answers and the threshold shift they add up to.

    Local mode keeps one shift per workspace. `current_shift` is the figure a hosted client sends with its
    Auto inputs (the gateway cannot see the editor's ratings and follow-ups).
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    def current_shift(self, workspace: str) -> float:
        """The workspace's threshold shift now, in share points (+0.04 ≈ 4% more requests to Sonnet)."""
        return _current(self._services.store.auto_shift_state(workspace))

    def after_rating(self, workspace: str, turns: list[StoredTurn], answer: StoredTurn) -> Judgement | None:
        return self._relabel(workspace, answer, follow_up_of(turns, answer))

    def after_turn_started(
        self, workspace: str, history: list[StoredTurn], model_id: str, retry_of: str | None
    ) -> None:
        """A retry of an answer, or the next message after the conversation's last answer, was just sent."""
        if retry_of:
            answer = next((t for t in history if t.id == retry_of), None)
            follow_up = FollowUp("retry", model_id)
        else:
            answer = next((t for t in reversed(history) if t.role == "assistant"), None)
            follow_up = FollowUp("next", model_id)
        if answer is not None:
            self._relabel(workspace, answer, follow_up)

    def month(self, workspace: str, since: str) -> AutoForYou:
        return auto_for_you(self._services.store.auto_month(workspace, since), self.current_shift(workspace))

    def _relabel(self, workspace: str, answer: StoredTurn, follow_up: FollowUp | None) -> Judgement | None:
        if answer.model_id != "auto" or answer.role != "assistant":
            return None
        judgement = None
        if answer.status in ("complete", "cancelled") and answer.routed_model:
            judgement = judge(answer.routed_model, _rating(answer.rating), follow_up)
        if answer.status == "cancelled" and judgement and judgement.cause == "moved_on":
            judgement = None  # going on after stopping an answer is no sign that it was right
        label = StoredLabel(judgement.label, judgement.cause, judgement.delta) if judgement else None
        self._services.store.relabel(workspace, answer.id, label, _shifted)
        return judgement


class FeedbackFeature(Feature):
    def __init__(self, editor: Editor, services: Services, learning: AutoFeedback) -> None:
        super().__init__(editor)
        self.services = services
        self.learning = learning

    def register(self) -> None:
        register_request(self.editor, methods.FEEDBACK, self.feedback)

    def feedback(self, params: FeedbackParams) -> FeedbackResult:
        store = self.services.store
        conversation = store.load_conversation(params.workspace_uri, params.conversation_id)
        if conversation is None:
            raise ConversationNotFound(params.conversation_id)
        answer = next((t for t in conversation.turns if t.id == params.turn_id), None)
        if answer is None or answer.role != "assistant":
            what = "an answer in" if answer is not None else "a turn of"
            raise InvalidParams(
                f"Turn {params.turn_id!r} is not {what} this conversation: only answers can be rated.",
                InvalidParamsData(errors=["turnId: not an answer in this conversation"]),
            )
        store.set_rating(answer.id, params.rating)
        answer.rating = params.rating
        judgement = self.learning.after_rating(params.workspace_uri, conversation.turns, answer)
        return FeedbackResult(
            turn_id=answer.id,
            rating=params.rating,
            label=judgement.label if judgement else None,
            auto_shift=round(self.learning.current_shift(params.workspace_uri), 4),
        )


def _rating(stored: str | None) -> Rating | None:
    return "up" if stored == "up" else "down" if stored == "down" else None


def follow_up_of(turns: list[StoredTurn], answer: StoredTurn) -> FollowUp | None:
    """What came right after `answer`: a retry of it, else the next message (the model its answer used)."""
    position = next((i for i, t in enumerate(turns) if t.id == answer.id), None)
    if position is None:
        return None
    later = turns[position + 1 :]
    for index, turn in enumerate(later):
        if turn.role == "assistant" and turn.retry_of == answer.id:
            return FollowUp("retry", turn.model_id or "auto")
        if turn.role == "user":
            reply = next((t for t in later[index + 1 :] if t.role == "assistant"), None)
            return FollowUp("next", reply.model_id or "auto") if reply else None
    return None


def _current(state: ShiftState) -> float:
    return bounded(decayed(state.shift, state.routed_turns - state.stored_at))


def _shifted(state: ShiftState, change: float) -> float:
    return bounded(_current(state) + change)


# (cause, one, several) for the "Auto for you" line.
_STRONGER_CAUSES = (
    ("thumbs_down", "thumbs-down", "thumbs-down"),
    ("stronger_retry", "retry with a stronger model", "retries with a stronger model"),
    ("switch_up", "switch to a stronger model", "switches to a stronger model"),
)
_CHEAPER_CAUSES = (
    ("thumbs_up", "thumbs-up", "thumbs-up"),
    ("cheaper_correction", "correction to a cheaper model", "corrections to a cheaper model"),
)


def auto_for_you(month: AutoMonth, shift: float) -> AutoForYou:
    leaning = direction(shift)
    causes = month.causes
    share = month.sonnet_answers / month.auto_answers if month.auto_answers else 0.0
    return AutoForYou(
        auto_answers=month.auto_answers,
        sonnet_answers=month.sonnet_answers,
        sonnet_share=round(share, 4),
        shift=round(shift, 4),
        direction=leaning,
        signals=AutoSignals(
            thumbs_up=causes.get("thumbs_up", 0),
            thumbs_down=causes.get("thumbs_down", 0),
            stronger_retries=causes.get("stronger_retry", 0),
            switches_up=causes.get("switch_up", 0),
            cheaper_corrections=causes.get("cheaper_correction", 0),
            moved_on=causes.get("moved_on", 0),
        ),
        summary=_summary(month, share, leaning),
    )


def _summary(month: AutoMonth, share: float, leaning: str) -> str:
    head = (
        f"Auto for you: {round(share * 100)}% Sonnet this month"
        if month.auto_answers
        else "Auto for you: no Auto answers this month yet"
    )
    if leaning == "neutral":
        return head
    named = _STRONGER_CAUSES if leaning == "stronger" else _CHEAPER_CAUSES
    reasons = [
        f"{count} {one if count == 1 else several}"
        for cause, one, several in named
        if (count := month.causes.get(cause, 0))
    ]
    if not reasons:
        return f"{head}, leaning {leaning} from earlier feedback"
    return f"{head}, leaning {leaning} after {_joined(reasons)}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
