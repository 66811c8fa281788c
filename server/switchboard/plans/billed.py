"""Which model a turn is billed as. The one rule both the language server and the gateway apply."""

from __future__ import annotations

from collections.abc import Collection

from switchboard.catalog.models import CATALOG

# Auto's 1.0x is a blend that leans on Haiku for the many requests Haiku answers well.
AUTOS_CHEAPEST = "claude-haiku-4.5"


def billed_model(chosen: str, answering: str, auto_models: Collection[str] | None) -> str:
    """The one chosen, except an Auto the user's allow-list keeps off Haiku, which bills the model that
    answers (else Auto would sell Sonnet at 1.0x to whoever leaves Haiku out)."""
    if chosen == "auto" and auto_models is not None and AUTOS_CHEAPEST not in auto_models:
        return answering
    return chosen


def billed_note(answering: str) -> str:
    """What the route reason adds when Auto's turn bills the model that answered."""
    spec, haiku = CATALOG[answering], CATALOG[AUTOS_CHEAPEST].name
    billed = f"billed as {spec.name} ({spec.credit_multiplier:g}x)"
    return f"{billed}: Auto's 1.0x needs {haiku} among your Auto models"
