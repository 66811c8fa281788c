"""Auto's router under RouteLLM's own evaluation protocol (issue 18), next to same-run baselines.

Run: .venv/bin/python bench/router_routellm_protocol.py [--data /work/shared/datasets/routing]

RouteLLM (arXiv 2406.18665) evaluates on the full MMLU and GSM8K sets of its repository, minus its
`contaminated_prompts.jsonl` (14,037 and 1,307 prompts), with Mixtral-8x7B-Instruct as the cheap model and
GPT-4-1106 as the strong one. The router must not have been trained on in-domain labels: Auto's escalation
model is fitted on the editor-traffic suite only, and its question model (`switchboard.routing.questions`,
which decides self-contained questions) on GSM8K's train split and ulab's items with every evaluation
question removed, so every prompt here is unseen. The old router
(`router_lab/legacy`) is shown beside it for the side-by-side table, marked: it was trained on 55–70% of these
very questions with their labels, so its figure is not a protocol figure.

Printed per set: APGR, CPT(50%) and CPT(80%) for Auto's router (P(needs Sonnet) of the prompt alone: no
context, no conversation), the old router (prompt alone), random routing (mean of 200 seeds) and prompt
length; a paired bootstrap (the same resamples for every scorer, 1,000) gives 95% intervals for Auto's APGR
and its lead over prompt length; and the figures to beat (RouteLLM's best published APGR: MMLU 0.603, SW
ranking; GSM8K 0.622, causal LLM) with issue 18's targets (≥ 0.63 and ≥ 0.65); then how many prompts took
the question model's path and Auto's Sonnet share at each preference (no labels). About 90 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from router_lab import datasets
from router_lab.legacy.router import LegacyRouter
from router_lab.metrics import bootstrap_apgr, interval, random_router_metrics, router_metrics
from switchboard.routing import PREFERENCES, RouteInput, Router
from switchboard.routing.questions import QUESTION

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routing"
BOOTSTRAP = 1000
# RouteLLM's best published APGR per set, and issue 18's targets.
PUBLISHED = {"mmlu": (0.603, "SW ranking"), "gsm8k": (0.622, "causal LLM")}
TARGETS = {"mmlu": 0.63, "gsm8k": 0.65}


def evaluate(data: Path) -> dict[str, Any]:
    router = Router.load()
    sets = {"mmlu": datasets.load_mmlu(data), "gsm8k": datasets.load_gsm8k(data)}
    out: dict[str, Any] = {}
    for name, examples in sets.items():
        cheap = np.array([e.cheap for e in examples])
        strong = np.array([e.strong for e in examples])
        decisions = [router.decide(RouteInput(prompt=e.prompt)) for e in examples]
        scores = np.array([d.probability for d in decisions])
        questions = sum(1 for d in decisions if QUESTION in d.features.contributions)
        shares = {
            preference: float(np.mean(scores >= router.base_threshold(preference)))
            for preference in PREFERENCES
        }
        lengths = np.array([float(len(e.prompt)) for e in examples])
        old = np.array([LegacyRouter.load().probability(e.prompt) for e in examples])
        auto_runs, length_runs = bootstrap_apgr([scores, lengths], cheap, strong, BOOTSTRAP)
        auto = router_metrics(scores, cheap, strong)
        length = router_metrics(lengths, cheap, strong)
        out[name] = {
            "n": len(examples),
            "auto": auto,
            "random": random_router_metrics(cheap, strong),
            "length": length,
            "old": router_metrics(old, cheap, strong),
            "auto_interval": interval(auto.apgr, auto_runs),
            "question_items": questions,
            "sonnet_share": shares,
            "versus_length": interval(auto.apgr - length.apgr, auto_runs - length_runs),
        }
    return out


def print_report(figures: dict[str, Any]) -> None:
    print("| set   |      n | method        |  APGR | CPT50 | CPT80 |")
    print("|-------|-------:|---------------|------:|------:|------:|")
    for name, f in figures.items():
        for key, label in (
            ("auto", "Auto router"),
            ("old", "old router *"),
            ("random", "random (200×)"),
            ("length", "prompt length"),
        ):
            m = f[key]
            cells = f"{m.apgr:5.3f} | {m.cpt50:5.1%} | {m.cpt80:5.1%}"
            print(f"| {name:5s} | {f['n']:6,d} | {label:13s} | {cells} |")
    print("* trained on 55–70% of these questions with their labels: not a protocol figure")
    print(f"\nPaired bootstrap, {BOOTSTRAP} resamples, 95% intervals; published figures, issue 18's targets:")
    for name, f in figures.items():
        spread, lead = f["auto_interval"], f["versus_length"]
        published, method = PUBLISHED[name]
        verdict = "met" if spread.estimate >= TARGETS[name] else "MISSED"
        print(
            f"  {name:5s} APGR {spread.estimate:.3f} [{spread.low:.3f}, {spread.high:.3f}]; "
            f"− prompt length {lead.estimate:+.3f} [{lead.low:+.3f}, {lead.high:+.3f}]; "
            f"RouteLLM {published} ({method}); target ≥ {TARGETS[name]}: {verdict}"
        )
    print("\nAuto's path and its Sonnet share at each preference's threshold (no labels involved):")
    for name, f in figures.items():
        shares = ", ".join(f"{p} {share:.1%}" for p, share in f["sonnet_share"].items())
        path = f"question model on {f['question_items']:,} of {f['n']:,} prompts"
        print(f"  {name:5s} {path}; Sonnet share: {shares}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
