# pyright: basic
"""Trains the difficulty model and writes the router's artifact.

    ./dev train-router            # installs the `train` extra, then runs this with the paths below
    cd bench && python -m router_lab.legacy.train --data ../../shared/datasets/routing \
        --out router_lab/legacy/

Deterministic: fixed splits (see `datasets`), a deterministic solver (L-BFGS) and a zip written with fixed
timestamps, so the same data gives the same artifact bytes. Needs scikit-learn (dev-only); the router itself
does not. The test splits are never read here.

Steps (docs/router.md explains the choices):
1. Examples of the train split; vocabulary of word uni/bigrams seen in ≥ `min_df` training prompts; IDF.
2. Soft labels: the strong model's win rate over the cheap one, ties counted half — (gain + 1) / 2, where the
   gain is blended with the mean gain of the example's group (MMLU subject, ulab task) and, for ulab, with
   the strong model's mean gain over four small models (a less noisy view of "hard for a small model").
3. Logistic regression (L2, C) on TF-IDF n-grams + standardised numeric features + one indicator per source
   (absorbs each source's base rate during training; at run time it is replaced by the sources' mean).
4. The threshold: on the validation split, with the shipped scorer (learned logit + the context/keyword prior
   of `signals`), the one that maximises quality on the three-set mix while Auto's cost stays within the
   budget (`COST_BUDGET` of always-Sonnet, Haiku costing a third of Sonnet per request).
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack, vstack
from sklearn.linear_model import LogisticRegression

from router_lab import datasets
from router_lab.datasets import SOURCES, Example
from router_lab.legacy.difficulty import ARTIFACT_NAME, DifficultyModel, DifficultyWeights, save_weights
from router_lab.legacy.scoring import standalone_probability
from router_lab.legacy.text_features import NUMERIC_FEATURE_NAMES, excerpt, ngram_counts, numeric_features
from router_lab.metrics import mix_outcome, outcome_at, router_metrics
from switchboard.routing.pricing import typical_request_cost_usd

MIN_DF = 2
C = 0.3
GROUP_SMOOTHING = 0.5  # weight of the example's own gain vs its group's mean gain
SMALL_MODEL_BLEND = 0.5  # ulab: weight of the cheap model's own gain vs the small models' mean gain
SOURCE_BIAS_SCALE = 10.0  # large value = weakly regularised per-source intercepts
COST_BUDGET = 0.58  # of always-Sonnet; the target is 0.60, with a margin for drift from validation to test
QUALITY_TARGET = 0.95


@dataclass(frozen=True)
class Vocabulary:
    grams: list[str]
    index: dict[str, int]
    idf: np.ndarray


def build_vocabulary(prompts: list[str], min_df: int) -> Vocabulary:
    document_frequency: Counter[str] = Counter()
    for prompt in prompts:
        document_frequency.update(ngram_counts(excerpt(prompt)).keys())
    grams = sorted(g for g, df in document_frequency.items() if df >= min_df)
    n = len(prompts)
    idf = np.array([math.log((1 + n) / (1 + document_frequency[g])) + 1.0 for g in grams], dtype=np.float64)
    return Vocabulary(grams, {g: i for i, g in enumerate(grams)}, idf)


def ngram_matrix(prompts: list[str], vocabulary: Vocabulary) -> csr_matrix:
    """TF-IDF rows exactly as `DifficultyModel.text_logit` computes them (float32 IDF, as shipped)."""
    idf32 = vocabulary.idf.astype(np.float32).astype(np.float64)
    indptr, indices, values = [0], [], []
    for prompt in prompts:
        row = [
            (vocabulary.index[g], c)
            for g, c in ngram_counts(excerpt(prompt)).items()
            if g in vocabulary.index
        ]
        weights = np.array([(1.0 + math.log(c)) * idf32[j] for j, c in row], dtype=np.float64)
        norm = float(np.sqrt((weights**2).sum())) if len(row) else 1.0
        indices += [j for j, _ in row]
        values += list(weights / (norm or 1.0))
        indptr.append(len(indices))
    return csr_matrix((values, indices, indptr), shape=(len(prompts), len(vocabulary.grams)))


def soft_targets(examples: list[Example]) -> np.ndarray:
    gains = np.array([e.gain for e in examples])
    for i, e in enumerate(examples):
        if e.small_model_scores:
            small_gain = float(np.mean([e.strong - s for s in e.small_model_scores]))
            gains[i] = SMALL_MODEL_BLEND * gains[i] + (1 - SMALL_MODEL_BLEND) * small_gain
    groups = [f"{e.source}:{e.group}" for e in examples]
    totals: dict[str, list[float]] = {}
    for group, gain in zip(groups, gains, strict=True):
        totals.setdefault(group, []).append(float(gain))
    group_mean = {g: float(np.mean(v)) for g, v in totals.items()}
    smoothed = GROUP_SMOOTHING * gains + (1 - GROUP_SMOOTHING) * np.array([group_mean[g] for g in groups])
    return (smoothed + 1.0) / 2.0


def fit(examples: list[Example], min_df: int, c: float) -> DifficultyWeights:
    prompts = [e.prompt for e in examples]
    vocabulary = build_vocabulary(prompts, min_df)
    grams = ngram_matrix(prompts, vocabulary)
    numeric = np.array([numeric_features(p) for p in prompts])
    mean, scale = numeric.mean(axis=0), numeric.std(axis=0)
    scale[scale == 0] = 1.0
    sources = np.array([[SOURCE_BIAS_SCALE * (e.source == s) for s in SOURCES] for e in examples])
    features = hstack([grams, csr_matrix((numeric - mean) / scale), csr_matrix(sources)]).tocsr()
    target = soft_targets(examples)
    doubled = vstack([features, features]).tocsr()
    labels = np.r_[np.ones(len(examples)), np.zeros(len(examples))]
    model = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(
        doubled, labels, sample_weight=np.r_[target, 1 - target]
    )
    coef = model.coef_[0]
    n_grams, n_numeric = len(vocabulary.grams), len(NUMERIC_FEATURE_NAMES)
    source_coef = coef[n_grams + n_numeric :]
    return DifficultyWeights(
        vocabulary=vocabulary.grams,
        idf=vocabulary.idf.astype(np.float32),
        ngram_weights=coef[:n_grams].astype(np.float32),
        numeric_mean=mean,
        numeric_scale=scale,
        numeric_weights=coef[n_grams : n_grams + n_numeric].astype(np.float64),
        intercept=float(model.intercept_[0] + SOURCE_BIAS_SCALE * source_coef.mean()),
        threshold=0.5,
    )


def cheap_cost_ratio() -> float:
    return typical_request_cost_usd("claude-haiku-4.5") / typical_request_cost_usd("claude-sonnet-4.5")


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    strong_share: float
    quality_ratio: float
    cost_ratio: float


Scored = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def threshold_curve(scored: Scored) -> list[ThresholdChoice]:
    """Every candidate threshold (high to low) with its outcome on the validation mix."""
    pooled = np.concatenate([scores for scores, _, _ in scored.values()])
    candidates = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, 4001)))[::-1]
    curve = []
    for threshold in candidates:
        mix = mix_outcome([outcome_at(threshold, *arrays) for arrays in scored.values()], cheap_cost_ratio())
        curve.append(ThresholdChoice(float(threshold), mix.strong_share, mix.quality_ratio, mix.cost_ratio))
    return curve


def choose_threshold(curve: list[ThresholdChoice], prefer: str) -> ThresholdChoice:
    """`cost`: best quality with cost ≤ COST_BUDGET; `quality`: cheapest with quality ≥ QUALITY_TARGET."""
    if prefer == "quality":
        return next(c for c in curve if c.quality_ratio >= QUALITY_TARGET)
    within = [c for c in curve if c.cost_ratio <= COST_BUDGET]
    return max(within, key=lambda c: (c.quality_ratio, c.threshold))


def share_thresholds(curve: list[ThresholdChoice]) -> np.ndarray:
    """The threshold for each strong share 0%, 1%, …, 100% of the validation mix (decreasing)."""
    shares = np.array([c.strong_share for c in curve])
    thresholds = np.array([c.threshold for c in curve])
    table = np.interp(np.linspace(0.0, 1.0, 101), shares, thresholds)
    return np.minimum.accumulate(table)


def score_split(
    model: DifficultyModel, examples: list[Example]
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    scored = {}
    for source in SOURCES:
        part = [e for e in examples if e.source == source]
        scores = np.array([standalone_probability(model, e.prompt) for e in part])
        scored[source] = (scores, np.array([e.cheap for e in part]), np.array([e.strong for e in part]))
    return scored


def split_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for e in examples:
        counts.setdefault(e.source, {}).setdefault(e.split, 0)
        counts[e.source][e.split] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the routing data folder (see its README)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the artifact into")
    parser.add_argument("--min-df", type=int, default=MIN_DF)
    parser.add_argument("--c", type=float, default=C)
    parser.add_argument(
        "--prefer",
        choices=("cost", "quality"),
        default="cost",
        help="threshold objective when the cost and quality targets cannot both be met on validation",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    examples = [e for e in datasets.load_examples(args.data) if e.split != "test"]
    train, val = datasets.select(examples, "train"), datasets.select(examples, "val")
    print(f"train {len(train)}, validation {len(val)} examples")
    weights = fit(train, args.min_df, args.c)
    model = DifficultyModel(weights)
    scored = score_split(model, val)
    for source, (scores, cheap, strong) in scored.items():
        m = router_metrics(scores, cheap, strong)
        print(
            f"validation {source:6s} n={len(scores):5d} APGR {m.apgr:.3f} "
            f"CPT50 {m.cpt50:.1%} CPT80 {m.cpt80:.1%}"
        )
    curve = threshold_curve(scored)
    choice = choose_threshold(curve, args.prefer)
    alternative = choose_threshold(curve, "quality" if args.prefer == "cost" else "cost")
    print(
        f"threshold {choice.threshold:.4f}: strong share {choice.strong_share:.1%}, quality "
        f"{choice.quality_ratio:.1%} of always-strong, cost {choice.cost_ratio:.1%} of always-Sonnet "
        "(validation)"
    )
    meta = {
        "format": 1,
        "trained_on": "RouteLLM GSM8K+MMLU (Apache-2.0), LLMRouter ulab (MIT), train split: docs/router.md",
        "min_df": args.min_df,
        "c": args.c,
        "group_smoothing": GROUP_SMOOTHING,
        "small_model_blend": SMALL_MODEL_BLEND,
        "examples": split_counts(examples),
        "vocabulary_size": len(weights.vocabulary),
        "threshold_choice": choice.__dict__,
        "threshold_alternative": alternative.__dict__,
        "prefer": args.prefer,
        "cost_budget": COST_BUDGET,
    }
    print(
        f"(the other objective: threshold {alternative.threshold:.4f}, "
        f"strong share {alternative.strong_share:.1%}, "
        f"quality {alternative.quality_ratio:.1%}, cost {alternative.cost_ratio:.1%})"
    )
    table = share_thresholds(curve)
    final = DifficultyWeights(
        **{**weights.__dict__, "threshold": choice.threshold, "share_thresholds": table, "meta": meta}
    )
    args.out.mkdir(parents=True, exist_ok=True)
    save_weights(final, args.out / ARTIFACT_NAME)
    size = (args.out / ARTIFACT_NAME).stat().st_size
    print(f"wrote {args.out / ARTIFACT_NAME} ({size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
