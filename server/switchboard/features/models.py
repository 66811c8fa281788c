"""The model picker: the catalog as the user's plan allows it, and the per-workspace selection."""

from __future__ import annotations

from lsprotocol import types as lsp

from switchboard.catalog import CATALOG, ModelSpec, is_known_model
from switchboard.plans import get_plan, require_plan_allows
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

from .account import AccountFeature
from .base import Feature, dump, register_request
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
    def __init__(self, editor: Editor, services: Services, account: AccountFeature) -> None:
        super().__init__(editor)
        self.services = services
        self.account = account
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
        return ModelsResult(
            selected=self.selected(params.workspace_uri), models=[self._info(m) for m in CATALOG.values()]
        )

    def select(self, params: SelectModelParams) -> SelectModelResult:
        spec = require_known_model(params.model_id)
        self.require_allowed(spec)
        self.services.store.select_model(params.workspace_uri, spec.id)
        result = SelectModelResult(selected=spec.id)
        self.editor.notify(methods.MODEL_CHANGED.method, dump(result))
        return result

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
            context_window=spec.context_window,
            max_output_tokens=spec.max_output_tokens,
            supports_thinking=spec.supports_thinking,
            recommended=spec.id == DEFAULT_MODEL,
            anthropic_model=spec.anthropic_model,
        )
