"""The model catalog: what each model is, what it costs in credits, and which Anthropic model it calls."""

from .models import AUTO, CATALOG, ModelSpec, concrete_id, get_model, is_known_model

__all__ = ["AUTO", "CATALOG", "ModelSpec", "concrete_id", "get_model", "is_known_model"]
