"""Which model a turn is billed as. The one rule both the language server and the gateway apply."""

from __future__ import annotations

from collections.abc import Collection

from switchboard.catalog.models import CATALOG

# Auto's 1.0x is a blend that leans on Haiku for the many requests Haiku answers well.
AUTOS_CHEAPEST = "claude-haiku-4.5"


def auto_bills_answering(auto_models: Collection[str] | None) -> bool:
    """Whether an Auto turn with this allow-list bills the model that answers: Haiku is left out of it (else
    Auto would sell Sonnet at 1.0x to whoever leaves Haiku out)."""
    return auto_models is not None and AUTOS_CHEAPEST not in auto_models


def billed_model(chosen: str, answering: str, auto_models: Collection[str] | None) -> str:
    """The one chosen, except an Auto that bills the model that answers (`auto_bills_answering`)."""
    return answering if chosen == "auto" and auto_bills_answering(auto_models) else chosen


def with_billed_note(reason: str, answering: str, auto_models: Collection[str] | None) -> str:
    """An Auto route's reason, saying so when the turn bills the model that answers."""
    if not auto_bills_answering(auto_models):
        return reason
    spec, haiku = CATALOG[answering], CATALOG[AUTOS_CHEAPEST].name
    billed = f"billed as {spec.name} ({spec.credit_multiplier:g}x)"
    return f"{reason}; {billed}: Auto's 1.0x needs {haiku} among your Auto models"
