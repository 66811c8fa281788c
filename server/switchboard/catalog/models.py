"""The five models a user can pick, with the facts the picker, the router and the meter need."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from switchboard.protocol.messages import ConcreteModelId, ModelId

# The day Anthropic retires a model id, from when it cannot answer: Anthropic's model deprecations page
# (https://docs.anthropic.com/en/docs/resources/model-deprecations), which the anthropic SDK copies into its
# own deprecation warning (anthropic/_data/deprecated_models.py). Aliases retire with their snapshot.
ANTHROPIC_RETIREMENTS: dict[str, date] = {
    "claude-opus-4-5-20251101": date(2027, 1, 22),
    "claude-opus-4-5": date(2027, 1, 22),
}


@dataclass(frozen=True)
class ModelSpec:
    id: ModelId
    name: str
    description: str
    benefits: tuple[str, ...]
    credit_multiplier: float
    # The most tokens of input (with the output) a request may hold: the language server fits history into
    # it, and the hosted gateway reserves this much input for a turn whose content it cannot measure (a
    # document or image by URL or file id). 200,000 for every model below (Anthropic's standard window).
    context_window: int
    max_output_tokens: int
    supports_thinking: bool
    # The Anthropic model id called; None for Auto, which routes to a concrete model.
    default_anthropic_model: str | None
    # Input and output list prices in USD per million tokens (for cost figures, not for credits).
    price_in_usd_per_mtok: float = 0.0
    price_out_usd_per_mtok: float = 0.0
    # A ceiling on how fast the model writes output, in tokens a second: a generous upper bound on the speeds
    # seen from Anthropic's API (roughly twice them), not a figure Anthropic documents. The hosted gateway's
    # meter bounds the thinking of a cut turn, which Anthropic bills but streams only a summary of, by the
    # time it took times this (docs/gateway.md, "Settling"). 0: no bound known (Auto, which never answers).
    output_tokens_per_second_ceiling: float = 0.0

    @property
    def anthropic_model(self) -> str | None:
        """The Anthropic id to call; `SWITCHBOARD_MODEL_<ID>` overrides the default (to pin a snapshot)."""
        if self.default_anthropic_model is None:
            return None
        env = "SWITCHBOARD_MODEL_" + self.id.upper().replace("-", "_").replace(".", "_")
        return os.environ.get(env) or self.default_anthropic_model

    @property
    def retires_on(self) -> date | None:
        """The day Anthropic retires the id this model calls (pinned or not); None when none is announced."""
        return ANTHROPIC_RETIREMENTS.get(self.anthropic_model or "")

    def retired(self, today: date) -> bool:
        return self.retires_on is not None and today >= self.retires_on

    def retirement(self, today: date) -> str | None:
        """What to tell a user of this model about its retirement, before the day and from it."""
        day = self.retires_on
        if day is None:
            return None
        if today >= day:
            return f"Anthropic retired {self.name} on {day}: it can no longer answer."
        return f"Anthropic retires {self.name} on {day}: from that day it can no longer answer."


AUTO = ModelSpec(
    id="auto",
    name="Auto",
    description=(
        "Claude Haiku 4.5 by default, Claude Sonnet 4.5 when what you ask needs it (about one request in "
        "four at the balanced preference). Says which it chose and why."
    ),
    benefits=(
        "Sonnet-4-level answers for about 60% of always-Sonnet's API cost",
        "Billed at 1.0x whichever model answers",
        "Keeps the prompt cache warm instead of bouncing between models",
    ),
    credit_multiplier=1.0,
    context_window=200_000,
    max_output_tokens=64_000,
    supports_thinking=True,
    default_anthropic_model=None,
)

HAIKU_45 = ModelSpec(
    id="claude-haiku-4.5",
    name="Claude Haiku 4.5",
    description="The fastest and cheapest Claude: quick questions, small edits and explanations.",
    benefits=("Fastest answers", "0.4x credits", "Good at everyday coding questions"),
    credit_multiplier=0.4,
    context_window=200_000,
    max_output_tokens=64_000,
    supports_thinking=True,
    default_anthropic_model="claude-haiku-4-5-20251001",
    price_in_usd_per_mtok=1.0,
    price_out_usd_per_mtok=5.0,
    output_tokens_per_second_ceiling=250,
)

SONNET_40 = ModelSpec(
    id="claude-sonnet-4.0",
    name="Claude Sonnet 4.0",
    description="The previous Sonnet: dependable for coding and analysis.",
    benefits=("Strong, well-known coding model", "Stable behaviour for established workflows"),
    credit_multiplier=1.3,
    context_window=200_000,
    max_output_tokens=64_000,
    supports_thinking=True,
    default_anthropic_model="claude-sonnet-4-20250514",
    price_in_usd_per_mtok=3.0,
    price_out_usd_per_mtok=15.0,
    output_tokens_per_second_ceiling=150,
)

SONNET_45 = ModelSpec(
    id="claude-sonnet-4.5",
    name="Claude Sonnet 4.5",
    description="The best balance of intelligence and speed for complex coding and agent work.",
    benefits=("Best for multi-file changes and design questions", "Strong reasoning with extended thinking"),
    credit_multiplier=1.3,
    context_window=200_000,
    max_output_tokens=64_000,
    supports_thinking=True,
    default_anthropic_model="claude-sonnet-4-5-20250929",
    price_in_usd_per_mtok=3.0,
    price_out_usd_per_mtok=15.0,
    output_tokens_per_second_ceiling=150,
)

OPUS_45 = ModelSpec(
    id="claude-opus-4.5",
    name="Claude Opus 4.5",
    description="The most capable Claude, for the hardest problems and long, careful work.",
    benefits=("Highest quality on hard problems", "Best at deep reasoning and large refactors"),
    credit_multiplier=2.2,
    context_window=200_000,
    max_output_tokens=64_000,
    supports_thinking=True,
    default_anthropic_model="claude-opus-4-5-20251101",
    price_in_usd_per_mtok=5.0,
    price_out_usd_per_mtok=25.0,
    output_tokens_per_second_ceiling=120,
)

CATALOG: dict[str, ModelSpec] = {spec.id: spec for spec in (AUTO, HAIKU_45, SONNET_40, SONNET_45, OPUS_45)}


def concrete_id(spec: ModelSpec) -> ConcreteModelId:
    """The id of a model that answers (not Auto), typed as such."""
    if spec.id == "auto":
        raise ValueError("auto routes to a concrete model and never answers itself")
    return spec.id


def is_known_model(model_id: str) -> bool:
    return model_id in CATALOG


def get_model(model_id: str) -> ModelSpec:
    """The spec of a known model id (callers check `is_known_model` on client input first)."""
    return CATALOG[model_id]
