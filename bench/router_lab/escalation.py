"""Fits Auto's escalation model on the editor-traffic suite's development half (docs/router.md).

    ./dev train-router     # or: cd bench && ../.venv/bin/python -m router_lab.escalation [--dry-run]

1. Features: `switchboard.routing.escalation.learned_features` of every development item, through the same
   code the router runs (the prompt's ask signals and the attached context's summary).
2. Weights: maximum a posteriori logistic regression (Newton's method, numpy only) with a Gaussian prior on
   each weight, centred on the published Claude 4.x benchmark gap that matches the signal (`PRIORS`).
3. Operating points, on the development half only: `balanced` escalates when P(needs Sonnet) ≥ ½ (Bayes'
   rule for agreement), raised only if more than `BALANCED_MAX_SHARE` of the items would go to Sonnet;
   `economy` and `quality` sit `ECONOMY_SHARE_DELTA` and `QUALITY_SHARE_DELTA` points of Sonnet share below
   and above it. The share → threshold table serves the user's threshold shift. All of these are read from
   out-of-fold probabilities (5 folds within the development half): in-sample ones are overconfident.

The held-out half is never read here (bench/router_editor_traffic.py reports on it). Same data, same
bytes: the fit is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from router_lab.editor_traffic.split import is_development
from router_lab.editor_traffic.suite import Item, load_suite
from switchboard.routing.ask import read_ask
from switchboard.routing.context import summarize_context
from switchboard.routing.escalation import FEATURE_NAMES, EscalationModel, learned_features

ARTIFACTS = Path(__file__).resolve().parents[2] / "server" / "switchboard" / "routing" / "artifacts"

# Prior means (log-odds): logit(Sonnet 4.5's score) − logit(Haiku 4.5's score) on the benchmark that best
# matches the signal; docs/router.md gives the sources and says which could not be verified from here.
SWE_BENCH_GAP = 0.21  # SWE-bench Verified 77.2% vs 73.3%: coding in general
TERMINAL_BENCH_GAP = 0.36  # Terminal-Bench 50.0% vs 41.0%: long multi-step agentic work
GPQA_GAP = 0.62  # GPQA Diamond 83.4% vs 73.0%: hard reasoning
AIME_GAP = 0.47  # AIME 2025 (thinking) 87.0% vs 80.7%: multi-step mathematical reasoning
PRIORS: dict[str, float] = {
    "design": TERMINAL_BENCH_GAP,
    "security": SWE_BENCH_GAP,
    "security_in_code": SWE_BENCH_GAP,
    "concurrency": GPQA_GAP,
    "algorithm": AIME_GAP,
    "whole_context": SWE_BENCH_GAP,
    "structural": SWE_BENCH_GAP,
    "care": SWE_BENCH_GAP,
    "systemic": SWE_BENCH_GAP,
    "wide_ask": SWE_BENCH_GAP,
    "mechanical": 0.0,  # Haiku 4.5 ≥ Sonnet 4 on coding: a local edit needs nothing above the bar
    "error_pasted": 0.0,
    "log_ask_words": 0.0,
}
PRIOR_SD = 1.5
INTERCEPT_SD = 10.0
BALANCED_MAX_SHARE = 0.30  # issue 18: at most 30% of editor traffic to Sonnet
BAYES_THRESHOLD = 0.5
FOLDS = 5
ECONOMY_SHARE_DELTA = -0.08
QUALITY_SHARE_DELTA = 0.10


def feature_matrix(items: list[Item]) -> NDArray[np.float64]:
    rows: list[list[float]] = []
    for item in items:
        context = summarize_context([(a.uri, a.text, a.language_id) for a in item.context])
        values = learned_features(read_ask(item.prompt), context)
        rows.append([values[name] for name in FEATURE_NAMES])
    return np.array(rows, dtype=np.float64)


def fit_map(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Logistic regression with N(μ, σ²) priors on the weights (intercept nearly free), by Newton."""
    n, d = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    mean = np.array([0.0] + [PRIORS[name] for name in FEATURE_NAMES])
    precision = np.array([1 / INTERCEPT_SD**2] + [1 / PRIOR_SD**2] * d)
    beta = mean.copy()
    for _ in range(100):
        p = 1 / (1 + np.exp(-(design @ beta)))
        gradient = design.T @ (p - y) + precision * (beta - mean)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + np.diag(precision)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return beta[1:], float(beta[0])


def probabilities(
    x: NDArray[np.float64], weights: NDArray[np.float64], intercept: float
) -> NDArray[np.float64]:
    return 1 / (1 + np.exp(-(x @ weights + intercept)))


def balanced_threshold(p: NDArray[np.float64]) -> float:
    """Bayes' rule for agreement with the labels (escalate when P(needs Sonnet) ≥ ½, both errors counting
    alike), raised only if that sends more than `BALANCED_MAX_SHARE` of the development half to Sonnet."""
    if float((p >= BAYES_THRESHOLD).mean()) <= BALANCED_MAX_SHARE:
        return BAYES_THRESHOLD
    ordered = np.sort(p)[::-1]
    k = int(BALANCED_MAX_SHARE * len(ordered))
    return float(ordered[k - 1] + ordered[k]) / 2


def share_table(p: NDArray[np.float64]) -> list[float]:
    """share_table[k]: the threshold that sends k% of these items to Sonnet (1.0 at 0%, 0.0 at 100%)."""
    ordered = np.sort(p)[::-1]
    table = [1.0]
    for k in range(1, 100):
        cut = k / 100 * len(ordered)
        low = math.floor(cut)
        table.append(float(ordered[max(0, low - 1)] + ordered[min(len(ordered) - 1, low)]) / 2)
    table.append(0.0)
    # Non-increasing by construction of the sort; keep it strictly usable for interpolation.
    return [min(table[: i + 1]) for i in range(len(table))]


def fold_of(item_id: str) -> int:
    """Cross-validation folds within the development half, by another part of the id's hash."""
    return int(hashlib.sha256(item_id.encode("utf-8")).hexdigest()[8:16], 16) % FOLDS


def out_of_fold(items: list[Item], x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each item's probability from a model fitted without its fold: how the model scores unseen asks."""
    folds = np.array([fold_of(item.id) for item in items])
    p = np.zeros(len(items))
    for fold in range(FOLDS):
        held = folds == fold
        weights, intercept = fit_map(x[~held], y[~held])
        p[held] = probabilities(x[held], weights, intercept)
    return p


def train(items: list[Item]) -> EscalationModel:
    dev = [i for i in items if is_development(i.id)]
    x = feature_matrix(dev)
    y = np.array([1.0 if i.strong else 0.0 for i in dev])
    weights, intercept = fit_map(x, y)
    # Operating points from out-of-fold probabilities: in-sample ones are overconfident.
    p = out_of_fold(dev, x, y)
    table = share_table(p)
    partial = EscalationModel(dict(zip(FEATURE_NAMES, weights.tolist(), strict=True)), intercept, {}, table)
    balanced = balanced_threshold(p)
    share = partial.share_at(balanced)
    thresholds = {
        "economy": partial.threshold_at(share + ECONOMY_SHARE_DELTA),
        "balanced": balanced,
        "quality": partial.threshold_at(share + QUALITY_SHARE_DELTA),
    }
    meta = {
        "trained_on": "editor-traffic suite, development half (sha256(id) even): docs/router.md",
        "items": len(dev),
        "priors": PRIORS,
        "prior_sd": PRIOR_SD,
    }
    return EscalationModel(partial.weights, intercept, thresholds, table, meta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ARTIFACTS)
    parser.add_argument("--dry-run", action="store_true", help="fit and print, write nothing")
    args = parser.parse_args(argv)
    model = train(list(load_suite()))
    for name in FEATURE_NAMES:
        print(f"{name:18s} prior {PRIORS[name]:+.2f}  fitted {model.weights[name]:+.3f}")
    print(f"intercept {model.intercept:+.3f}; thresholds {model.thresholds}")
    if not args.dry_run:
        (args.out / "escalation_model.json").write_text(model.to_json())
        print(f"wrote {args.out / 'escalation_model.json'}")


if __name__ == "__main__":
    main()
