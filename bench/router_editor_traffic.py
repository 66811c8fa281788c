"""Auto's router on the editor-traffic suite (docs/router.md, "Editor-traffic suite"), next to the router it
replaced and baselines measured in the same run.

Run: .venv/bin/python bench/router_editor_traffic.py
     [--part whole|held-out|development|fresh|fresh2|…|fresh5|freshN] [--misrouted] [--json out.json]

Every item goes through the path the server takes for a first turn under Auto: the prompt and its attached
files become `ContextItem`s, `features/chat/auto.py: route_input` builds the `RouteInput` (fresh workspace: no
history, no threshold shift; a plan that allows every model) and the shipped artifact decides, at each
preference. Since round 4 the escalation model is fitted on the development half of `data/` plus the released
fresh batches (`fresh/`, `fresh2/`, since round 5 `fresh3/`, since round 6 `fresh4/`, since round 7 `fresh5/`;
`suite.RELEASED_BATCHES`) and its operating points are chosen on the other half
(`router_lab/editor_traffic/split.py`). Any other `freshN/` folder is a test batch: `--part freshN` prints its
aggregates and intervals only (no reasons, no items). The old router (`router_lab/legacy`) is the one Auto
shipped before issue 18, with its own artifact.

Printed: Auto's Sonnet share, its API cost relative to always-Sonnet (list prices through
switchboard.routing.pricing, input tokens estimated from the prompt plus the attached text, output tokens by
category, below), the share of easy items escalated, the share of hard items caught, and agreement with the
labels overall, per category, per context shape and per trap, then Auto's figures with 95% bootstrap
intervals. Baselines: routing by the labels, random
routing at Auto's Sonnet share (mean of 200 seeds), the longest asks and the longest inputs (ask plus
attachments) at Auto's share, always-Haiku and always-Sonnet. About two seconds; no timing is measured.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from router_lab.editor_traffic.metrics import (  # noqa: E402
    Figures,
    agreement_by,
    averaged,
    bootstrap_intervals,
    figures,
    random_choices,
    top_share,
)
from router_lab.editor_traffic.split import is_development  # noqa: E402
from router_lab.editor_traffic.suite import (  # noqa: E402
    CATEGORIES,
    FRESH,
    FRESH2,
    FRESH3,
    FRESH4,
    FRESH5,
    RELEASED_BATCHES,
    SHAPES,
    TRAPS,
    Item,
    batch_folder,
    is_batch_name,
    load_suite,
    load_training,
)
from router_lab.legacy.router import LegacyRouter  # noqa: E402
from switchboard.catalog import CATALOG  # noqa: E402
from switchboard.features.chat.auto import TurnFacts, route_input  # noqa: E402
from switchboard.protocol.messages import ContextItem  # noqa: E402
from switchboard.routing import PREFERENCES, Preference, RouteDecision, Router  # noqa: E402
from switchboard.routing.pricing import turn_cost_usd  # noqa: E402
from switchboard.tokens import estimate_tokens  # noqa: E402

HAIKU, SONNET = "claude-haiku-4.5", "claude-sonnet-4.5"
PLAN_MODELS = [model for model in CATALOG if model != "auto"]
SEEDS = 200
# Typical answer lengths (tokens) by category: a one-liner is short, a design plan long. They weight the
# cost figure only; Haiku 4.5 costs a third of Sonnet 4.5 on input and output alike.
OUTPUT_TOKENS = {
    "explain": 500,
    "rename": 500,
    "fix_error": 500,
    "write_test": 900,
    "refactor_small": 500,
    "refactor_large": 2_500,
    "one_liner": 120,
    "api_usage": 400,
    "config": 400,
    "performance": 600,
    "concurrency": 700,
    "security_review": 900,
    "design_plan": 1_200,
    "architecture": 1_500,
    "docs": 400,
}
# Issue 18's targets at the default preference.
MAX_SONNET_SHARE, MAX_EASY_ESCALATED, MIN_HARD_CAUGHT, MIN_CATEGORY_AGREEMENT = 0.30, 0.15, 0.70, 0.85


# Parts of what the router may learn from (`data/` and the released fresh batches).
PARTS: dict[str, Callable[[Item], bool]] = {
    "whole": lambda item: True,
    "held-out": lambda item: not is_development(item.id),
    "development": lambda item: is_development(item.id),
    "fresh": lambda item: item in FRESH_ITEMS,
    "fresh2": lambda item: item in FRESH2_ITEMS,
    "fresh3": lambda item: item in FRESH3_ITEMS,
    "fresh4": lambda item: item in FRESH4_ITEMS,
    "fresh5": lambda item: item in FRESH5_ITEMS,
}
FRESH_ITEMS = frozenset(load_suite(FRESH))
FRESH2_ITEMS = frozenset(load_suite(FRESH2))
FRESH3_ITEMS = frozenset(load_suite(FRESH3))
FRESH4_ITEMS = frozenset(load_suite(FRESH4))
FRESH5_ITEMS = frozenset(load_suite(FRESH5))
assert set(RELEASED_BATCHES) <= set(PARTS), "every released batch is a development part"


def is_test_part(part: str) -> bool:
    """A fresh batch not released to development (fresh6, …): only its aggregates, with intervals, are
    printed (no route reasons, no misrouted items), so reading it does not show what to tune."""
    return part not in PARTS and is_batch_name(part)


def part_name(value: str) -> str:
    """argparse type: a development part, or a test batch whose folder exists."""
    if value in PARTS:
        return value
    if not is_batch_name(value):
        raise argparse.ArgumentTypeError(f"unknown part {value!r}: one of {', '.join(PARTS)} or freshN")
    if not batch_folder(value).is_dir():
        raise argparse.ArgumentTypeError(f"no test batch folder {batch_folder(value)}")
    return value


def part_items(part: str) -> list[Item]:
    if is_test_part(part):
        return list(load_suite(batch_folder(part)))
    return [item for item in load_training() if PARTS[part](item)]


def decide(router: Router, item: Item, preference: Preference = "balanced") -> RouteDecision:
    context = [
        ContextItem.model_validate({"uri": a.uri, "text": a.text, "languageId": a.language_id})
        for a in item.context
    ]
    facts = TurnFacts(prompt=item.prompt, context=context, history=[], shift=0.0, preference=preference)
    return router.decide(route_input(facts, PLAN_MODELS))


def old_router_choice(item: Item) -> bool:
    return LegacyRouter.load().wants_sonnet(
        item.prompt, [(a.uri, a.text, a.language_id) for a in item.context]
    )


def input_tokens(item: Item) -> int:
    return estimate_tokens(item.prompt + "".join(a.text for a in item.context))


def turn_costs(item: Item) -> tuple[float, float]:
    tokens, answer = input_tokens(item), OUTPUT_TOKENS[item.category]
    return (
        turn_cost_usd(HAIKU, 0, tokens, answer, warm=False),
        turn_cost_usd(SONNET, 0, tokens, answer, warm=False),
    )


class Suite:
    """The suite's labels and prices, and every way of measuring one set of choices against them."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)
        self.hard = [item.strong for item in items]
        costs = [turn_costs(item) for item in items]
        self.haiku_cost = [c[0] for c in costs]
        self.sonnet_cost = [c[1] for c in costs]

    def figures(self, strong: Sequence[bool]) -> Figures:
        return figures(self.hard, strong, self.haiku_cost, self.sonnet_cost)

    def groups(self, strong: Sequence[bool]) -> dict[str, dict[str, float]]:
        by: dict[str, Callable[[Item], str]] = {
            "category": lambda i: i.category,
            "shape": lambda i: i.shape,
            "trap": lambda i: i.trap or "none",
        }
        return {
            name: agreement_by([key(i) for i in self.items], self.hard, strong) for name, key in by.items()
        }

    def flat(self, strong: Sequence[bool]) -> dict[str, float]:
        """Every figure of one set of choices in one flat dict (what `averaged` sums over seeds)."""
        out = dict(asdict(self.figures(strong)))
        for name, agreement in self.groups(strong).items():
            out.update({f"{name}:{group}": value for group, value in agreement.items()})
        return out


def evaluate(items: Sequence[Item]) -> dict[str, Any]:
    router = Router.load()
    started = time.perf_counter()
    decisions = [decide(router, item) for item in items]
    seconds = time.perf_counter() - started
    suite = Suite(items)
    auto = [d.model != HAIKU for d in decisions]
    share = sum(auto) / len(auto)
    by_preference = {
        p: suite.flat([decide(router, item, p).model != HAIKU for item in items])
        for p in PREFERENCES
        if p != "balanced"
    }
    methods: dict[str, dict[str, float]] = {
        "auto": suite.flat(auto),
        "auto economy": by_preference["economy"],
        "auto quality": by_preference["quality"],
        "old router": suite.flat([old_router_choice(item) for item in items]),
        "labels": suite.flat(suite.hard),
        "random": averaged(SEEDS, lambda seed: random_choices(len(items), share, seed), suite.flat),
        "ask length": suite.flat(top_share([float(len(i.prompt)) for i in items], share)),
        "input length": suite.flat(top_share([float(input_tokens(i)) for i in items], share)),
        "always Haiku": suite.flat([False] * len(items)),
        "always Sonnet": suite.flat([True] * len(items)),
    }
    intervals = {
        "all": bootstrap_intervals(suite.hard, auto),
        **{
            f"{group}:{key}": bootstrap_intervals(
                [i.strong for i, _ in members], [s for _, s in members], seed=index + 1
            )
            for index, (group, key, members) in enumerate(_groups(items, auto))
        },
    }
    return {
        "methods": methods,
        "intervals": intervals,
        "decisions": decisions,
        "suite": suite,
        "seconds": seconds,
    }


def _group_key(item: Item, group: str) -> str:
    return item.trap or "none" if group == "trap" else str(getattr(item, group))


def _groups(items: Sequence[Item], strong: Sequence[bool]) -> list[tuple[str, str, list[tuple[Item, bool]]]]:
    out: list[tuple[str, str, list[tuple[Item, bool]]]] = []
    for group, keys in (("category", CATEGORIES), ("shape", SHAPES), ("trap", ("none", *TRAPS))):
        for key in keys:
            members = [(i, s) for i, s in zip(items, strong, strict=True) if _group_key(i, group) == key]
            if members:
                out.append((group, key, members))
    return out


def print_intervals(result: dict[str, Any]) -> None:
    """Auto's figures at the default preference with 95% bootstrap intervals (2,000 resamples of items;
    per group, resampled within the group)."""
    methods: dict[str, dict[str, float]] = result["methods"]
    intervals: dict[str, dict[str, tuple[float, float]]] = result["intervals"]
    auto, overall = methods["auto"], intervals["all"]
    print("\nAuto (balanced) with 95% bootstrap intervals (2,000 resamples of items):\n")
    for key in ("sonnet_share", "easy_escalated", "hard_caught", "agreement"):
        low, high = overall[key]
        print(f"  {key:15s} {_pct(auto[key])}  [{_pct(low).strip()}, {_pct(high).strip()}]")
    print(
        "\n| group                    |   n | sonnet | agreement | 95% interval     | easy up | hard caught |"
    )
    print(
        "|--------------------------|----:|-------:|----------:|------------------|--------:|------------:|"
    )
    suite: Suite = result["suite"]
    decisions: list[RouteDecision] = result["decisions"]
    strong = [d.model != HAIKU for d in decisions]
    for group, key, members in _groups(suite.items, strong):
        hard = [i.strong for i, _ in members]
        chosen = [s for _, s in members]
        f = figures(hard, chosen, [0.0] * len(hard), [1.0] * len(hard))
        low, high = intervals[f"{group}:{key}"]["agreement"]
        band = f"[{_pct(low).strip()}, {_pct(high).strip()}]"
        print(
            f"| {group + ' ' + key:24s} | {len(members):3d} | {sum(hard):6d} | {_pct(f.agreement):>9s} | "
            f"{band:16s} | {_pct(f.easy_escalated):>7s} | {_pct(f.hard_caught):>11s} |"
        )


def _pct(x: float) -> str:
    return "   n/a" if math.isnan(x) else f"{x:6.1%}"


def print_report(result: dict[str, Any], misrouted: bool, show_reasons: bool = True) -> None:
    methods: dict[str, dict[str, float]] = result["methods"]
    suite: Suite = result["suite"]
    decisions: list[RouteDecision] = result["decisions"]
    n, hard = len(suite.items), sum(suite.hard)
    print(f"Editor-traffic suite: {n} items, {hard} labelled sonnet ({hard / n:.1%}).")
    print(f"Random: mean of {SEEDS} seeds at Auto's Sonnet share; ask/input length: the longest asks/inputs")
    print("(attachments included) at Auto's Sonnet share.\n")
    print(
        "| method        | Sonnet share | cost vs always-Sonnet | easy escalated | hard caught | agreement |"
    )
    print(
        "|---------------|-------------:|----------------------:|---------------:|------------:|----------:|"
    )
    for name, f in methods.items():
        cells = [f[k] for k in ("sonnet_share", "cost_ratio", "easy_escalated", "hard_caught", "agreement")]
        widths = (12, 21, 14, 11, 9)
        print(
            f"| {name:13s} | "
            + " | ".join(f"{_pct(c):>{w}s}" for c, w in zip(cells, widths, strict=True))
            + " |"
        )
    shown = ["auto", "old router", "random", "ask length", "input length", "always Haiku"]
    for group, keys in (("category", CATEGORIES), ("shape", SHAPES), ("trap", ("none", *TRAPS))):
        members = [
            i for i in suite.items if (i.trap or "none" if group == "trap" else getattr(i, group)) in keys
        ]
        print(f"\nAgreement with the labels per {group}:\n")
        print(f"| {group:15s} |   n | sonnet | " + " | ".join(f"{m:>12s}" for m in shown) + " |")
        print(f"|{'-' * 17}|----:|-------:|" + "|".join("-" * 13 + ":" for _ in shown) + "|")
        for key in keys:
            of = [i for i in members if (i.trap or "none" if group == "trap" else getattr(i, group)) == key]
            if not of:  # e.g. a batch written without trap marks
                continue
            labelled = sum(i.strong for i in of)
            cells = " | ".join(f"{_pct(methods[m][f'{group}:{key}']):>12s}" for m in shown)
            print(f"| {key:15s} | {len(of):3d} | {labelled:6d} | {cells} |")
    auto = methods["auto"]
    worst = min(auto[f"category:{c}"] for c in CATEGORIES)
    print("\nIssue 18's targets for Auto at the default preference:")
    for label, ok in (
        (
            f"Sonnet share {_pct(auto['sonnet_share']).strip()} ≤ 30%",
            auto["sonnet_share"] <= MAX_SONNET_SHARE,
        ),
        (
            f"easy escalated {_pct(auto['easy_escalated']).strip()} ≤ 15%",
            auto["easy_escalated"] <= MAX_EASY_ESCALATED,
        ),
        (f"hard caught {_pct(auto['hard_caught']).strip()} ≥ 70%", auto["hard_caught"] >= MIN_HARD_CAUGHT),
        (f"every category ≥ 85% agreement (worst {_pct(worst).strip()})", worst >= MIN_CATEGORY_AGREEMENT),
    ):
        print(f"  {'met   ' if ok else 'MISSED'} {label}")
    if not show_reasons:
        return
    wrong = [(i, d) for i, d in zip(suite.items, decisions, strict=True) if i.strong != (d.model != HAIKU)]
    for title, strong in (("easy items escalated", False), ("hard items kept on Haiku", True)):
        reasons = Counter(d.reason for i, d in wrong if i.strong == strong)
        print(f"\nRoute reasons of the {title} ({sum(reasons.values())}):")
        for reason, count in reasons.most_common(6):
            print(f"  {count:3d}  {reason}")
    if misrouted:
        print("\nEvery item routed against its label:")
        for item, d in wrong:
            print(
                f"  {item.id:22s} {item.tier:6s} {item.shape:7s} p={d.probability:.3f}  {item.prompt[:70]!r}"
            )
    print(
        f"\n{n} decisions in {result['seconds'] * 1000:.0f} ms (not a latency figure; see router_latency.py)"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--misrouted", action="store_true", help="list every item routed against its label")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--part",
        type=part_name,
        default="whole",
        help=f"which part of the suite: {', '.join(PARTS)}, or an unreleased test batch freshN",
    )
    args = parser.parse_args(argv)
    test = is_test_part(args.part)
    if test and args.misrouted:
        parser.error(f"{args.part} is a test batch: it prints aggregates only")
    items = part_items(args.part)
    print(f"Part: {args.part}\n")
    result = evaluate(items)
    print_report(result, args.misrouted, show_reasons=not test)
    print_intervals(result)
    methods: dict[str, dict[str, float]] = result["methods"]
    if args.json:
        Path(args.json).write_text(json.dumps(methods, indent=2))
    return methods


if __name__ == "__main__":
    main()
