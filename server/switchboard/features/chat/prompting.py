"""Step 4 of a turn: the Messages API prompt for the answering model, within its context window."""

from __future__ import annotations

from switchboard.catalog import ModelSpec
from switchboard.config import Settings
from switchboard.protocol.errors import PromptTooLarge
from switchboard.protocol.messages import PromptTooLargeData
from switchboard.providers.prompt import BuiltPrompt, PromptTooLargeError, build_prompt, exchanges

from .turn import TurnRequest, anthropic_id


def turn_prompt(request: TurnRequest, model: ModelSpec, settings: Settings) -> BuiltPrompt:
    try:
        return build_prompt(
            exchanges(request.history, before=request.history_before),
            prompt=request.prompt,
            context=request.context,
            anthropic_model=anthropic_id(model),
            context_window=model.context_window,
            max_tokens=max_tokens(request, model, settings),
            thinking=request.thinking_budget is not None,
            cache=settings.prompt_cache,
        )
    except PromptTooLargeError as exc:
        raise PromptTooLarge(
            f"The prompt and attached context (about {exc.input_tokens:,} tokens) do not fit "
            f"{model.name}'s {model.context_window:,}-token context window. Attach less context.",
            PromptTooLargeData(
                model_id=model.id, input_tokens=exc.input_tokens, context_window=model.context_window
            ),
        ) from None


def max_tokens(request: TurnRequest, model: ModelSpec, settings: Settings) -> int:
    """The answer's output budget plus any thinking budget, within what the answering model produces."""
    output = settings.max_output_tokens + (request.thinking_budget or 0)
    return min(output, model.max_output_tokens)
