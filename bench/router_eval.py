"""A diagnostic since issue 18: Auto's router on the public RouteLLM/ulab test splits, next to the router it
replaced and two baselines measured in the same run. The router is now judged on the editor-traffic suite
(bench/router_editor_traffic.py); these prompt-only sets have no attached context and their cheap/strong pairs
(Mixtral vs GPT-4, Llama-8B vs Nemotron-51B) are far apart, so the figures say little about Haiku 4.5 vs
Sonnet 4.5. The old APGR target (0.72) is retired.

Run: .venv/bin/python bench/router_eval.py [--data /work/shared/datasets/routing]

Per test split (GSM8K and MMLU: hashed 30% of RouteLLM's sets; ulab: LLMRouter's published test file) and
averaged: APGR, CPT(50%), CPT(80%) and the share of strong-model calls needed for 95% of the strong model's
quality (RouteLLM's definitions, see bench/router_lab/metrics.py), for

* the shipped router (the committed artifact, the prompt alone: no context, no conversation, P(needs Sonnet)),
* the old router (bench/router_lab/legacy: the difficulty model Auto shipped before issue 18),
* random routing (averaged over 200 seeds),
* prompt length alone (longer → strong).

Then how sure those figures are: 95% intervals from a paired bootstrap over the test prompts (the same
resamples for every scorer) for the average APGR and for the router's lead over prompt length per split.

Then the default (balanced) threshold on the test mix (the three splits weighted equally): share of calls to
the strong model, quality relative to always-strong, and Auto's API cost relative to always-Sonnet (Haiku 4.5
as cheap, Sonnet 4.5 as strong, list prices, the typical token mix of routing.pricing). About 15 s.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from router_lab import datasets
from router_lab.legacy.router import LegacyRouter
from router_lab.metrics import (
    Interval,
    RouterMetrics,
    bootstrap_apgr,
    interval,
    mix_outcome,
    outcome_at,
    random_router_metrics,
    router_metrics,
)
from switchboard.routing import RouteInput, Router
from switchboard.routing.pricing import typical_request_cost_usd

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routing"
COST_TARGET = 0.60
QUALITY_TARGET = 0.95
BOOTSTRAP = 1000


def _pct(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{x:5.1%}"


def _row(split: str, n: int | str, method: str, m: RouterMetrics) -> str:
    return (
        f"| {split:7s} | {n!s:>5} | {method:14s} | {m.apgr:5.3f} | {_pct(m.cpt50)} | {_pct(m.cpt80)} "
        f"| {_pct(m.share_for_95)} |"
    )


def _mean(rows: list[RouterMetrics]) -> RouterMetrics:
    return RouterMetrics(
        apgr=float(np.mean([r.apgr for r in rows])),
        cpt50=float(np.mean([r.cpt50 for r in rows])),
        cpt80=float(np.mean([r.cpt80 for r in rows])),
        share_for_95=float(np.mean([r.share_for_95 for r in rows])),
    )


def evaluate(data: Path) -> dict[str, Any]:
    router = Router.load()
    old = LegacyRouter.load()
    examples = datasets.load_examples(data)
    methods = ("router", "old", "random", "length")
    results: dict[str, dict[str, RouterMetrics]] = {m: {} for m in methods}
    arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    sizes: dict[str, int] = {}
    boot_router: list[np.ndarray] = []
    versus_length: dict[str, Interval] = {}
    for source in datasets.SOURCES:
        test = datasets.select(examples, "test", source)
        cheap = np.array([e.cheap for e in test])
        strong = np.array([e.strong for e in test])
        scores = np.array([router.decide(RouteInput(prompt=e.prompt)).probability for e in test])
        lengths = np.array([float(len(e.prompt)) for e in test])
        arrays[source] = (scores, cheap, strong)
        sizes[source] = len(test)
        results["router"][source] = router_metrics(scores, cheap, strong)
        results["old"][source] = router_metrics(
            np.array([old.probability(e.prompt) for e in test]), cheap, strong
        )
        results["random"][source] = random_router_metrics(cheap, strong)
        results["length"][source] = router_metrics(lengths, cheap, strong)
        router_runs, length_runs = bootstrap_apgr([scores, lengths], cheap, strong, BOOTSTRAP)
        boot_router.append(router_runs)
        difference = results["router"][source].apgr - results["length"][source].apgr
        versus_length[source] = interval(difference, router_runs - length_runs)
    cheap_ratio = typical_request_cost_usd("claude-haiku-4.5") / typical_request_cost_usd("claude-sonnet-4.5")
    threshold = router.threshold(0.0)
    per_split = {s: outcome_at(threshold, *a) for s, a in arrays.items()}
    mix = mix_outcome(list(per_split.values()), cheap_ratio)
    runs = min(len(r) for r in boot_router)
    average = _mean(list(results["router"].values())).apgr
    return {
        "results": results,
        "average_interval": interval(average, np.mean([r[:runs] for r in boot_router], axis=0)),
        "versus_length": versus_length,
        "sizes": sizes,
        "per_split": per_split,
        "mix": mix,
        "threshold": threshold,
    }


def print_report(figures: dict[str, Any]) -> None:
    results: dict[str, dict[str, RouterMetrics]] = figures["results"]
    sizes: dict[str, int] = figures["sizes"]
    print("| split   |     n | method         |  APGR | CPT50 | CPT80 | 95% q |")
    print("|---------|------:|----------------|------:|------:|------:|------:|")
    for source in datasets.SOURCES:
        for method, label in (
            ("router", "Auto router"),
            ("old", "old router"),
            ("random", "random (200×)"),
            ("length", "prompt length"),
        ):
            print(_row(source, sizes[source], label, results[method][source]))
    for method, label in (
        ("router", "Auto router"),
        ("old", "old router"),
        ("random", "random (200×)"),
        ("length", "prompt length"),
    ):
        print(_row("average", "", label, _mean(list(results[method].values()))))
    spread: Interval = figures["average_interval"]
    average = spread.estimate
    beats = all(
        results["router"][s].apgr > max(results["random"][s].apgr, results["length"][s].apgr)
        for s in datasets.SOURCES
    )
    print(f"\nAPGR averaged over the test splits: {average:.3f} (a diagnostic; no target since issue 18)")
    print(f"Beats random and prompt length on every split: {'yes' if beats else 'NO'}")
    print(
        f"\nUncertainty (paired bootstrap over the test prompts, {BOOTSTRAP} resamples, 95% intervals):\n"
        f"  average APGR {spread.estimate:.3f} [{spread.low:.3f}, {spread.high:.3f}]"
    )
    for source, diff in figures["versus_length"].items():
        print(
            f"  {source:6s} router − prompt length {diff.estimate:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]"
        )
    print(f"\nDefault threshold {figures['threshold']:.4f} on the test splits:")
    print("| split   | strong calls | quality vs strong | cheap | strong |")
    print("|---------|-------------:|------------------:|------:|-------:|")
    for source, o in figures["per_split"].items():
        print(
            f"| {source:7s} | {o.strong_share:12.1%} | {o.quality_ratio:17.1%} | {o.quality_cheap:5.3f} | "
            f"{o.quality_strong:6.3f} |"
        )
    mix = figures["mix"]
    print(
        f"Test mix (splits weighted equally): {mix.strong_share:.1%} of calls to Sonnet 4.5; quality "
        f"{mix.quality_ratio:.1%} of always-strong (target ≥ {QUALITY_TARGET:.0%}: "
        f"{'met' if mix.quality_ratio >= QUALITY_TARGET else 'MISSED'}); API cost {mix.cost_ratio:.1%} of "
        f"always-Sonnet (target ≤ {COST_TARGET:.0%}: {'met' if mix.cost_ratio <= COST_TARGET else 'MISSED'})"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Auto router vs baselines on the held-out test splits")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no routing data at {args.data}", file=sys.stderr)
        raise SystemExit(2)
    started = time.perf_counter()
    figures = evaluate(args.data)
    print_report(figures)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return figures


if __name__ == "__main__":
    main()
