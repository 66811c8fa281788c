"""Step 6 of a turn, and the one place a turn is charged: store how it ended, then meter it.

The answer is safe on disk before it is charged, so a crash between the two is charged on the next start
(see `AccountFeature`). Complete answers are charged in full; a cancelled one pays for what streamed; a
failed one costs nothing and is recorded as uncharged. Signed in, the gateway charges: a stopped answer, or
one cut off after its output began (the gateway died, the connection broke), pays what reached the gateway,
a figure asked of the gateway once it has settled the turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from switchboard.catalog import concrete_id
from switchboard.plans.billed import billed_model
from switchboard.protocol import methods
from switchboard.protocol.errors import UpstreamFailed
from switchboard.protocol.messages import TurnCharged
from switchboard.store import GATEWAY, LOCAL, TurnOutcome

from ..account import AccountFeature
from ..base import dump
from ..host import Editor, Services
from .turn import Answer, TurnRequest, anthropic_id

log = logging.getLogger(__name__)

Ending = Literal["complete", "cancelled", "failed"]


class Settlement:
    def __init__(self, services: Services, account: AccountFeature, editor: Editor) -> None:
        self._services = services
        self._account = account
        self._editor = editor

    async def settle(self, request: TurnRequest, answer: Answer, ending: Ending, error: str | None) -> None:
        state = answer.state
        # Signed in, the gateway charges an answer cut off after its output began as it charges a stopped one.
        cut = ending == "cancelled" or (answer.hosted and ending == "failed" and state.started)
        if cut:
            state.usage = self._account.consumed(state.usage, state.text, state.output_reported)
        billable = ending == "complete" or (cut and state.started)
        answer.credits = self._account.price(billed(request, answer), state.usage) if billable else 0.0
        if answer.hosted and state.charge is not None:
            answer.credits = state.charge.credits  # the gateway's figure, never a local guess
        self._store_outcome(answer, ending, error)
        try:
            if answer.hosted:
                # Cut before the charge arrived: ask the gateway for it once it has settled the turn.
                cut_before_charge = cut and state.charge is None
                await self._account.charged_by_gateway(
                    answer.entitlement,
                    answer.turn_id,
                    credits=state.charge.credits if state.charge else None,
                    model_id=request.model.id,
                    routed_model=concrete_id(answer.route.model),
                    publish=not cut_before_charge,
                )
                if cut_before_charge:
                    # A gateway that died mid-answer is settled by another replica's reaper, later.
                    self._account.settle_cut_turn(
                        answer.turn_id, self._stored_charge(answer), crashed=ending == "failed"
                    )
                elif cut:
                    self._announce_charge(answer, answer.credits)  # the gateway's, which came in time
            elif billable:
                await self._charge(request, answer)
            else:
                await self._record_uncharged(request, answer, error or "failed before any output")
        except (UpstreamFailed, ConnectionError, TimeoutError) as away:
            # The gateway (or the network) is away: expected, and said in one line. Bugs keep their traceback.
            log.warning("Could not meter turn %s: %s", answer.turn_id, away)
        except Exception:
            log.exception("Could not meter turn %s", answer.turn_id)

    def _stored_charge(self, answer: Answer) -> Callable[[float], None]:
        def store(credits: float) -> None:
            self._services.store.set_turn_credits(answer.turn_id, credits)
            self._announce_charge(answer, credits)

        return store

    def _announce_charge(self, answer: Answer, credits: float) -> None:
        """`switchboard/turnCharged`: a stopped signed-in turn's charge, which its editor shows as pending
        until this comes (the cancel is answered before the gateway's figure is known)."""
        charged = TurnCharged(turn_id=answer.turn_id, conversation_id=answer.conversation_id, credits=credits)
        self._editor.notify(methods.TURN_CHARGED.method, dump(charged))

    async def _charge(self, request: TurnRequest, answer: Answer) -> None:
        charged = await self._account.charge(
            answer.entitlement,
            answer.turn_id,
            model_id=billed(request, answer),
            routed_model=concrete_id(answer.route.model),
            usage=answer.state.usage,
            workspace=request.workspace,
            conversation_id=answer.conversation_id,
        )
        answer.credits = float(charged)

    async def _record_uncharged(self, request: TurnRequest, answer: Answer, reason: str) -> None:
        await self._account.record_uncharged(
            answer.entitlement,
            answer.turn_id,
            reason=reason,
            model_id=request.model.id,
            routed_model=concrete_id(answer.route.model),
        )

    def _store_outcome(self, answer: Answer, ending: Ending, error: str | None) -> None:
        state = answer.state
        self._services.store.finish_turn(
            answer.turn_id,
            TurnOutcome(
                text=state.text,
                status=ending,
                thinking=state.thinking or None,
                thinking_signature=state.thinking_signature,
                routed_model=answer.route.model.id,
                anthropic_model=anthropic_id(answer.route.model),
                route_reason=answer.route.reason,
                stop_reason=state.stop_reason,
                usage=state.usage,
                credits=answer.credits,
                error=error,
                # Marks who charges it: a crash reconcile of the local ledger never charges the gateway's.
                billed_by=GATEWAY if answer.hosted else LOCAL,
            ),
        )


def billed(request: TurnRequest, answer: Answer) -> str:
    """The model the turn is billed as: Auto's 1.0x, or the answering model's rate (see `billed_model`)."""
    return billed_model(request.model.id, answer.route.model.id, request.auto_models)
