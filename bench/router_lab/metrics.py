"""RouteLLM's router metrics (APGR, CPT) and the cost/quality figures of a threshold.

A router scores each prompt; routing the top share `f` of prompts to the strong model gives quality(f), the
mean score of the answers chosen. PGR(f) = (quality(f) − quality_cheap) / (quality_strong − quality_cheap);
APGR is the area under PGR over f in [0, 1] (random routing ≈ 0.5). CPT(x) is the smallest f reaching
PGR ≥ x. Unlike RouteLLM's script, which samples 10 quantile thresholds, the curve here has every possible
cut (one per prompt), and prompts with equal scores are treated as routed in random order (their share of
the gain is interpolated linearly), so a constant score is exactly the random router.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RouterMetrics:
    apgr: float
    cpt50: float  # share of strong calls for PGR ≥ 50%
    cpt80: float
    share_for_95: float  # share of strong calls for quality ≥ 95% of the strong model's


@dataclass(frozen=True)
class Outcome:
    """Routing a set of prompts with one threshold."""

    strong_share: float
    quality: float
    quality_cheap: float
    quality_strong: float

    @property
    def quality_ratio(self) -> float:
        return self.quality / self.quality_strong


def quality_curve(scores: FloatArray, cheap: FloatArray, strong: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(shares f = k/n for k = 0..n, quality when the k highest-scored prompts go to the strong model)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    cumulative = np.concatenate([[0.0], np.cumsum((strong - cheap)[order])])
    ks = np.arange(n + 1, dtype=np.float64)
    gained = cumulative.copy()
    bounds = np.concatenate([[0], np.nonzero(np.diff(sorted_scores))[0] + 1, [n]])
    for start, end in pairwise(bounds.tolist()):
        if end - start > 1:
            span = ks[start : end + 1] - start
            gained[start : end + 1] = cumulative[start] + (cumulative[end] - cumulative[start]) * span / (
                end - start
            )
    return ks / n, float(cheap.mean()) + gained / n


def _first_share(shares: FloatArray, reached: NDArray[np.bool_]) -> float:
    hits = np.nonzero(reached)[0]
    return float(shares[hits[0]]) if len(hits) else float("nan")


def router_metrics(scores: FloatArray, cheap: FloatArray, strong: FloatArray) -> RouterMetrics:
    shares, quality = quality_curve(scores, cheap, strong)
    low, high = float(cheap.mean()), float(strong.mean())
    pgr = (quality - low) / (high - low)
    return RouterMetrics(
        apgr=float(np.trapezoid(pgr, shares)),
        cpt50=_first_share(shares, pgr >= 0.5 - 1e-12),
        cpt80=_first_share(shares, pgr >= 0.8 - 1e-12),
        share_for_95=_first_share(shares, quality >= 0.95 * high - 1e-12),
    )


def random_router_metrics(cheap: FloatArray, strong: FloatArray, seeds: int = 200) -> RouterMetrics:
    """Random routing, averaged over `seeds` seeds (each seed: random scores)."""
    runs = [
        router_metrics(np.random.default_rng(seed).random(len(cheap)), cheap, strong) for seed in range(seeds)
    ]
    return RouterMetrics(
        apgr=float(np.mean([r.apgr for r in runs])),
        cpt50=float(np.mean([r.cpt50 for r in runs])),
        cpt80=float(np.mean([r.cpt80 for r in runs])),
        share_for_95=float(np.nanmean([r.share_for_95 for r in runs])),
    )


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float  # 2.5th percentile of the resamples
    high: float  # 97.5th percentile


def bootstrap_apgr(
    scorers: list[FloatArray], cheap: FloatArray, strong: FloatArray, resamples: int = 1000, seed: int = 0
) -> list[FloatArray]:
    """APGR of each scorer on `resamples` resamples of the prompts (the same resample for every scorer, so
    differences between scorers are paired). Returns one array of `resamples` APGRs per scorer."""
    rng = np.random.default_rng(seed)
    n = len(cheap)
    runs: list[list[float]] = [[] for _ in scorers]
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        if np.all(cheap[pick] == strong[pick]):
            continue  # no gap between the models: PGR is undefined
        for run, scores in zip(runs, scorers, strict=True):
            run.append(router_metrics(scores[pick], cheap[pick], strong[pick]).apgr)
    return [np.array(run) for run in runs]


def interval(estimate: float, samples: FloatArray) -> Interval:
    low, high = np.percentile(samples, [2.5, 97.5])
    return Interval(estimate, float(low), float(high))


def outcome_at(threshold: float, scores: FloatArray, cheap: FloatArray, strong: FloatArray) -> Outcome:
    """Routing every prompt with score ≥ threshold to the strong model."""
    to_strong = scores >= threshold
    return Outcome(
        strong_share=float(to_strong.mean()),
        quality=float(np.where(to_strong, strong, cheap).mean()),
        quality_cheap=float(cheap.mean()),
        quality_strong=float(strong.mean()),
    )


@dataclass(frozen=True)
class MixOutcome:
    """A threshold on an evaluation mix (sets weighted equally); Auto's cost relative to always-strong."""

    strong_share: float
    quality_ratio: float
    cost_ratio: float


def mix_outcome(outcomes: list[Outcome], cheap_cost_ratio: float) -> MixOutcome:
    """`cheap_cost_ratio`: the cheap model's cost per request over the strong model's (Haiku/Sonnet: 1/3)."""
    share = float(np.mean([o.strong_share for o in outcomes]))
    quality = float(np.mean([o.quality for o in outcomes]))
    strong_quality = float(np.mean([o.quality_strong for o in outcomes]))
    return MixOutcome(
        strong_share=share,
        quality_ratio=quality / strong_quality,
        cost_ratio=share + (1.0 - share) * cheap_cost_ratio,
    )
