"""The model picker: the catalog as the user sees it, and the per-workspace selection."""

from __future__ import annotations

from switchboard.catalog import CATALOG, ModelSpec, is_known_model
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

from .base import Feature, dump, register_request

DEFAULT_MODEL: ModelId = "auto"


def require_known_model(model_id: str) -> ModelSpec:
    if not is_known_model(model_id):
        known = ", ".join(CATALOG)
        raise InvalidParams(
            f"Unknown model {model_id!r}. Choose one of: {known}.", InvalidParamsData(model_id=model_id)
        )
    return CATALOG[model_id]


class ModelsFeature(Feature):
    def register(self) -> None:
        register_request(self.server, methods.MODELS, self.models)
        register_request(self.server, methods.SELECT_MODEL, self.select)

    def selected(self, workspace: str | None) -> ModelId:
        workspace = workspace or self.server.default_workspace()
        stored = self.server.store.selected_model(workspace) if workspace else None
        if stored is None or not is_known_model(stored):
            return DEFAULT_MODEL
        return CATALOG[stored].id

    def models(self, params: ModelsParams) -> ModelsResult:
        return ModelsResult(
            selected=self.selected(params.workspace_uri), models=[_info(m) for m in CATALOG.values()]
        )

    def select(self, params: SelectModelParams) -> SelectModelResult:
        spec = require_known_model(params.model_id)
        self.server.store.select_model(params.workspace_uri, spec.id)
        result = SelectModelResult(selected=spec.id)
        self.server.notify(methods.MODEL_CHANGED.method, dump(result))
        return result


def _info(spec: ModelSpec) -> ModelInfo:
    return ModelInfo(
        id=spec.id,
        name=spec.name,
        description=spec.description,
        benefits=list(spec.benefits),
        credit_multiplier=spec.credit_multiplier,
        available=True,
        unavailable_reason=None,
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
        supports_thinking=spec.supports_thinking,
        recommended=spec.id == DEFAULT_MODEL,
        anthropic_model=spec.anthropic_model,
    )
