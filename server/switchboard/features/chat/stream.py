"""Step 5 of a turn: one streamed call to the answering model, its deltas forwarded as progress reports."""

from __future__ import annotations

from collections.abc import Callable

from switchboard.config import Settings
from switchboard.protocol.messages import TextReport, ThinkingReport
from switchboard.providers.base import ChatProvider, ProviderRequest, StreamCallbacks, TurnTags

from .coalesce import DeltaCoalescer
from .progress import TurnProgress
from .prompting import max_tokens
from .turn import Answer, TurnRequest, anthropic_id


async def stream_answer(
    provider: ChatProvider,
    request: TurnRequest,
    answer: Answer,
    progress: TurnProgress,
    settings: Settings,
    on_route: Callable[[str, str, bool], None] | None = None,
) -> None:
    """Streams into `answer.state`; what arrived stays there when the call fails or is cancelled."""
    texts = DeltaCoalescer(lambda text: progress.report(TextReport(text=text)))
    thoughts = DeltaCoalescer(lambda text: progress.report(ThinkingReport(text=text)))
    provider_request = ProviderRequest(
        anthropic_model=anthropic_id(answer.route.model),
        system=answer.prompt.system,
        messages=answer.prompt.messages,
        max_tokens=max_tokens(request, answer.route.model, settings),
        thinking_budget=request.thinking_budget,
        tags=TurnTags(answer.turn_id, request.model.id, answer.route.hints if request.auto else None),
    )
    try:
        callbacks = StreamCallbacks(on_text=texts.push, on_thinking=thoughts.push, on_route=on_route)
        await provider.stream(provider_request, answer.state, callbacks)
    finally:
        thoughts.flush()
        texts.flush()
