"""The model picker: the catalog as the user's plan allows it, and the per-workspace selection."""

from __future__ import annotations

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, ModelSpec, is_known_model
from switchboard.plans import get_plan
from switchboard.plans.billed import auto_bills_answering
from switchboard.plans.meter import require_plan_allows
from switchboard.protocol import methods
from switchboard.protocol.errors import InvalidParams
from switchboard.protocol.messages import (
    InvalidParamsData,
    ModelId,
    ModelInfo,
    ModelsParams,
    ModelsResult,
    SelectModelParams,
    SelectModelResult,
)
from switchboard.routing import AUTO_MODELS, DEFAULT_PREFERENCE, Preference, Router
from switchboard.routing.pricing import typical_request_cost_usd

from .account import AccountFeature
from .base import Feature, dump, register_request
from .feedback import AutoFeedback
from .host import Editor, Services

DEFAULT_MODEL: ModelId = "auto"


def require_known_model(model_id: str) -> ModelSpec:
    if not is_known_model(model_id):
        known = ", ".join(CATALOG)
        raise InvalidParams(
            f"Unknown model {model_id!r}. Choose one of: {known}.", InvalidParamsData(model_id=model_id)
        )
    return CATALOG[model_id]


class ModelsFeature(Feature):
    def __init__(
        self, editor: Editor, services: Services, account: AccountFeature, learning: AutoFeedback
    ) -> None:
        super().__init__(editor)
        self.services = services
        self.account = account
        self.learning = learning
        account.on_plan_change.append(self._recheck_default_workspace)

    def register(self) -> None:
        register_request(self.editor, methods.MODELS, self.models)
        register_request(self.editor, methods.SELECT_MODEL, self.select)

    def selected(self, workspace: str | None) -> ModelId:
        """The workspace's selection; one the plan no longer allows falls back to Auto, with a notice."""
        workspace = workspace or self.editor.default_workspace()
        stored = self.services.store.selected_model(workspace) if workspace else None
        if stored is None or not is_known_model(stored):
            return DEFAULT_MODEL
        if workspace and not self.account.allows(stored):
            self._fall_back(workspace, CATALOG[stored])
            return DEFAULT_MODEL
        return CATALOG[stored].id

    def require_allowed(self, spec: ModelSpec) -> None:
        require_plan_allows(get_plan(self.account.entitlement().plan), spec.id)

    def models(self, params: ModelsParams) -> ModelsResult:
        infos = [self._info(m) for m in CATALOG.values()]
        workspace = params.workspace_uri or self.editor.default_workspace()
        shift = self.learning.current_shift(workspace) if workspace else 0.0
        allowed = [m for m in AUTO_MODELS if self.account.allows(m)]
        if params.auto_models is not None:
            allowed = [m for m in allowed if m in params.auto_models]
        preference = params.auto_preference or DEFAULT_PREFERENCE
        auto = auto_description(allowed, preference, shift)
        if auto_bills_answering(params.auto_models):
            auto = f"{auto} {AUTO_BILLED_AS_ANSWERING}"
        infos = [
            info.model_copy(update={"description": auto}) if info.id == "auto" else info for info in infos
        ]
        return ModelsResult(selected=self.selected(params.workspace_uri), models=infos)

    async def select(self, params: SelectModelParams) -> SelectModelResult:
        spec = require_known_model(params.model_id)
        await self.account.recheck_plan(spec.id)  # signed in: an upgrade at the gateway counts at once
        self.require_allowed(spec)
        self.services.store.select_model(params.workspace_uri, spec.id)
        # modelChanged's notice is for changes the server made on its own; the retirement is the caller's.
        self.editor.notify(methods.MODEL_CHANGED.method, dump(SelectModelResult(selected=spec.id)))
        return SelectModelResult(selected=spec.id, notice=self._retirement_notice(spec))

    def _retirement_notice(self, spec: ModelSpec) -> str | None:
        """Selecting a model Anthropic retires (or has retired) says so: its requests fail from that day."""
        today = self.services.today()
        notice = spec.retirement(today)
        return f"{notice} Choose another model." if notice and spec.retired(today) else notice

    def _fall_back(self, workspace: str, previous: ModelSpec) -> None:
        notice = f"{self.account.forbidden_reason(previous.id)}: switched this workspace to Auto."
        self.services.store.select_model(workspace, DEFAULT_MODEL)
        self.editor.notify(
            methods.MODEL_CHANGED.method, dump(SelectModelResult(selected="auto", notice=notice))
        )
        self.editor.show_message(notice, lsp.MessageType.Info)

    def _recheck_default_workspace(self) -> None:
        self.selected(None)

    def _info(self, spec: ModelSpec) -> ModelInfo:
        available = self.account.allows(spec.id)
        return ModelInfo(
            id=spec.id,
            name=spec.name,
            description=spec.description,
            benefits=list(spec.benefits),
            credit_multiplier=spec.credit_multiplier,
            available=available,
            unavailable_reason=None if available else self.account.forbidden_reason(spec.id),
            retires_on=spec.retires_on,
            context_window=spec.context_window,
            max_output_tokens=spec.max_output_tokens,
            supports_thinking=spec.supports_thinking,
            recommended=spec.id == DEFAULT_MODEL,
            anthropic_model=spec.anthropic_model,
        )


# Where the picker's figures come from; the setting's texts in client-ts/package.json say the same and carry
# the same figures (tests/test_auto_feedback.py keeps them in step).
# Auto's 1.0x needs Haiku among the models it may use (`switchboard.plans.billed`).
AUTO_BILLED_AS_ANSWERING = (
    "Without Claude Haiku 4.5 among your Auto models, a turn is billed at the rate of the model that "
    "answers, not 1.0x."
)
FIGURES_SOURCE = (
    "Share: the router's own figure on the validation half of Switchboard's editor-traffic suite; "
    "cost: a typical request at list prices."
)


def auto_description(allowed: list[str], preference: Preference, shift: float) -> str:
    """Auto's picker entry: the models it may use and, at the user's preference and learned shift, the
    expected share of requests on Sonnet and the API cost of a typical request against always-Sonnet.

    The figures come first: a picker shows one line of it (VS Code's quick pick cuts the rest)."""
    if not allowed:
        return "None of your Auto models is on your plan: add one to switchboard.auto.models."
    haiku = "claude-haiku-4.5"
    strong = next((m for m in allowed if m != haiku), None)  # Sonnet 4.5 before 4.0 (AUTO_MODELS' order)
    cheap = haiku if haiku in allowed else strong
    single = strong is None or cheap == strong
    share = (0.0 if strong is None else 1.0) if single else Router.load().strong_share(shift, preference)
    cost = share * typical_request_cost_usd(strong or haiku) + (1 - share) * typical_request_cost_usd(
        cheap or haiku
    )
    always_sonnet = typical_request_cost_usd("claude-sonnet-4.5")
    # Cost first and short: a quick pick shows about 80 characters of this line and cuts the rest.
    figures = (
        f"{'' if single else '~'}{share:.0%} Sonnet · ~${cost:.4f} a typical request "
        f"({cost / always_sonnet:.0%} of always-Sonnet)"
    )
    if single:  # one model: neither the preference nor the learned shift changes anything
        return f"{figures} · only {_short(allowed[0])}."
    learned = f", {shift * 100:+.0f} points learned from your feedback" if abs(shift) >= 0.005 else ""
    return (
        f"{figures} · {', '.join(_short(m) for m in allowed)} · {preference}{learned}. "
        f"{CATALOG[haiku].name} by default, {CATALOG[strong or haiku].name} when what you ask needs it. "
        f"{FIGURES_SOURCE}"
    )


def _short(model_id: str) -> str:
    return CATALOG[model_id].name.removeprefix("Claude ")
