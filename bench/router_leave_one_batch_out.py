"""Leave-one-batch-out: the escalation model fitted without one released fresh batch, read on that batch
(docs/router.md, "Round 7"). Round 6's method (signals, wording) and round 7's (the same plus the ask's
meaning) side by side.

Run: .venv/bin/python bench/router_leave_one_batch_out.py [--batches fresh3 fresh4 fresh5] [--json out.json]

For each held-out batch: the training items are `data/` and every other released batch
(`suite.RELEASED_BATCHES`), split into the development and validation halves by the same id hash as the
shipped fit (`router_lab/editor_traffic/split.py`); weights on the first, operating points on the second
(`router_lab.escalation.train`); then every item of the held-out batch is decided at each preference, as a
first turn with no question model (`router_lab.escalation.decisions`). The figures are issue 18's: Sonnet
share, easy escalated, hard caught (95% bootstrap intervals), agreement per category.

What is held out is the batch's items, not its influence on the hand-written signals: round 5 read fresh3's
misroutes and round 6 read fresh4's to write trigger phrasings (docs/router.md), so both methods' signals have
seen those two batches; only fresh5 was never read to write a trigger. A test batch (any `freshN/` not
released) is never read here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_lab.editor_traffic.metrics import agreement_by, bootstrap_intervals, figures
from router_lab.editor_traffic.suite import (
    DATA,
    RELEASED_BATCHES,
    Item,
    batch_folder,
    load_suite,
)
from router_lab.embedding import StaticEmbedding, built
from router_lab.escalation import decisions, halves, train
from switchboard.routing import PREFERENCES

FOLDS = ("fresh3", "fresh4", "fresh5")
METHODS = ("round 6", "round 7")
ROUND_6_MARGIN = 0.03  # round 6's balanced operating point: 3 points under the validation labels' share
CATEGORY_TARGET = 0.85


def training_without(held_out: str) -> list[Item]:
    items = list(load_suite(DATA))
    for name in RELEASED_BATCHES:
        if name != held_out:
            items += load_suite(batch_folder(name))
    return items


def reading(method: str, held_out: str, embedding: StaticEmbedding) -> dict[str, Any]:
    """The method fitted without `held_out`, read on it at each preference."""
    development, validation = halves(training_without(held_out))
    if method == "round 7":
        model = train(development, validation, embedding)
    else:
        model = train(development, validation, None, ROUND_6_MARGIN)
    batch = list(load_suite(batch_folder(held_out)))
    hard = [item.strong for item in batch]
    out: dict[str, Any] = {}
    for preference in PREFERENCES:
        strong = [d.wants_strong for d in decisions(model, batch, preference)]
        zero = [0.0] * len(batch)
        figure = figures(hard, strong, zero, [1.0] * len(batch))
        categories = agreement_by([item.category for item in batch], hard, strong)
        out[preference] = {
            "sonnet_share": figure.sonnet_share,
            "easy_escalated": figure.easy_escalated,
            "hard_caught": figure.hard_caught,
            "agreement": figure.agreement,
            "intervals": bootstrap_intervals(hard, strong),
            "categories": dict(sorted(categories.items())),
            "categories_met": sum(value >= CATEGORY_TARGET for value in categories.values()),
        }
    return out


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def interval(pair: tuple[float, float]) -> str:
    return f"[{percent(pair[0])}, {percent(pair[1])}]"


def report(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    header = "held out | method | Sonnet share | easy escalated | hard caught | agreement | categories ≥ 85%"
    print(f"| {header} |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for held_out, methods in results.items():
        for method, by_preference in methods.items():
            f = by_preference["balanced"]
            i = f["intervals"]
            print(
                f"| {held_out} | {method} | {percent(f['sonnet_share'])} {interval(i['sonnet_share'])} | "
                f"{percent(f['easy_escalated'])} {interval(i['easy_escalated'])} | "
                f"{percent(f['hard_caught'])} {interval(i['hard_caught'])} | {percent(f['agreement'])} | "
                f"{f['categories_met']}/{len(f['categories'])} |"
            )
    print("\nAgreement per category at balanced (%), round 6 → round 7:\n")
    folds = list(results)
    print("| category | " + " | ".join(folds) + " |")
    print("|---|" + "---:|" * len(folds))
    categories = next(iter(next(iter(results.values())).values()))["balanced"]["categories"]
    for category in categories:
        cells = [
            f"{percent(results[fold]['round 6']['balanced']['categories'][category])} → "
            f"{percent(results[fold]['round 7']['balanced']['categories'][category])}"
            for fold in folds
        ]
        print(f"| {category} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", nargs="+", default=list(FOLDS), choices=RELEASED_BATCHES)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    embedding = built()
    results = {
        held_out: {method: reading(method, held_out, embedding) for method in METHODS}
        for held_out in args.batches
    }
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
