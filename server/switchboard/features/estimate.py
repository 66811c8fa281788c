"""A cost preview before sending: what the typed message would cost on every model."""

from __future__ import annotations

from switchboard.catalog import CATALOG, ModelSpec
from switchboard.plans import estimate_credits
from switchboard.protocol import methods
from switchboard.protocol.errors import ConversationNotFound
from switchboard.protocol.messages import EstimateParams, EstimateResult, ModelEstimate
from switchboard.providers.prompt import Exchange, PromptTooLargeError, build_prompt, exchanges
from switchboard.tokens import estimate_tokens

from .account import AccountFeature
from .base import Feature, register_request
from .host import Editor, Services

# Without earlier answers to go by, a typical chat answer is a few paragraphs and a code block.
TYPICAL_ANSWER_TOKENS = 600


class EstimateFeature(Feature):
    def __init__(self, editor: Editor, services: Services, account: AccountFeature) -> None:
        super().__init__(editor)
        self.services = services
        self.account = account

    def register(self) -> None:
        register_request(self.editor, methods.ESTIMATE, self.estimate)

    def estimate(self, params: EstimateParams) -> EstimateResult:
        history = self._history(params)
        output = _typical_output(history)
        return EstimateResult(
            estimates=[self._one(spec, params, history, output) for spec in CATALOG.values()]
        )

    def _history(self, params: EstimateParams) -> list[Exchange]:
        if not params.conversation_id:
            return []
        stored = self.services.store.load_conversation(params.workspace_uri, params.conversation_id)
        if stored is None:
            raise ConversationNotFound(params.conversation_id)
        return exchanges(stored.turns)

    def _one(
        self, spec: ModelSpec, params: EstimateParams, history: list[Exchange], output: int
    ) -> ModelEstimate:
        window = spec.context_window
        try:
            built = build_prompt(
                history,
                prompt=params.prompt or " ",
                context=params.context,
                anthropic_model=spec.anthropic_model or "auto",
                context_window=window,
                max_tokens=min(self.services.settings.max_output_tokens, spec.max_output_tokens),
                thinking=False,
            )
            input_tokens, fits = built.input_tokens, True
        except PromptTooLargeError as exc:
            input_tokens, fits = exc.input_tokens, False
        return ModelEstimate(
            model_id=spec.id,
            input_tokens=input_tokens,
            estimated_output_tokens=output,
            estimated_credits=float(estimate_credits(spec.id, input_tokens, output)),
            allowed=self.account.allows(spec.id),
            fits_context=fits,
            context_window=window,
        )


def _typical_output(history: list[Exchange]) -> int:
    """The conversation's own average answer length, once it has answers."""
    lengths = [
        ex.answer.usage.output_tokens if ex.answer.usage else estimate_tokens(ex.answer.text)
        for ex in history
    ]
    return round(sum(lengths) / len(lengths)) if lengths else TYPICAL_ANSWER_TOKENS
