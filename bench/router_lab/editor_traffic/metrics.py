"""How a router's choices on the editor-traffic suite compare with the labels, and what they cost.

Every function takes plain per-item sequences (the label, the choice, the two prices), so the figures can be
checked on small hand-made inputs. "Strong" means Sonnet; an item labelled `sonnet` is "hard", one labelled
`haiku` is "easy".
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Figures:
    n: int
    sonnet_share: float  # share of items sent to Sonnet
    cost_ratio: float  # API cost relative to sending every item to Sonnet
    easy_escalated: float  # share of easy items sent to Sonnet
    hard_caught: float  # share of hard items sent to Sonnet
    agreement: float  # share of items routed as labelled


def _share(hits: int, total: int) -> float:
    return hits / total if total else math.nan


def figures(
    hard: Sequence[bool], strong: Sequence[bool], haiku_cost: Sequence[float], sonnet_cost: Sequence[float]
) -> Figures:
    n = len(hard)
    if not (len(strong) == len(haiku_cost) == len(sonnet_cost) == n):
        raise ValueError("every sequence needs one entry per item")
    easy_total = sum(1 for h in hard if not h)
    spent = sum(
        s_cost if s else h_cost for s, h_cost, s_cost in zip(strong, haiku_cost, sonnet_cost, strict=True)
    )
    return Figures(
        n=n,
        sonnet_share=_share(sum(strong), n),
        cost_ratio=spent / sum(sonnet_cost) if n else math.nan,
        easy_escalated=_share(sum(1 for h, s in zip(hard, strong, strict=True) if s and not h), easy_total),
        hard_caught=_share(sum(1 for h, s in zip(hard, strong, strict=True) if s and h), n - easy_total),
        agreement=_share(sum(1 for h, s in zip(hard, strong, strict=True) if h == s), n),
    )


def agreement_by(groups: Sequence[str], hard: Sequence[bool], strong: Sequence[bool]) -> dict[str, float]:
    """Per group (category, context shape…), the share of its items routed as labelled."""
    totals: dict[str, list[int]] = {}
    for group, h, s in zip(groups, hard, strong, strict=True):
        hits = totals.setdefault(group, [0, 0])
        hits[0] += h == s
        hits[1] += 1
    return {group: agreed / total for group, (agreed, total) in totals.items()}


def top_share(scores: Sequence[float], share: float) -> list[bool]:
    """Sends the `round(share × n)` highest-scored items to Sonnet (ties: the earlier item first)."""
    k = round(share * len(scores))
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    chosen = set(ranked)
    return [i in chosen for i in range(len(scores))]


def random_choices(n: int, share: float, seed: int) -> list[bool]:
    """`round(share × n)` items drawn uniformly at random go to Sonnet."""
    chosen = set(random.Random(seed).sample(range(n), round(share * n)))
    return [i in chosen for i in range(n)]


def averaged(
    seeds: int, route: Callable[[int], list[bool]], measure: Callable[[list[bool]], dict[str, float]]
) -> dict[str, float]:
    """The mean of `measure(route(seed))` over `seeds` seeds, figure by figure."""
    sums: dict[str, float] = {}
    for seed in range(seeds):
        for key, value in measure(route(seed)).items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: total / seeds for key, total in sums.items()}


def bootstrap_intervals(
    hard: Sequence[bool],
    strong: Sequence[bool],
    resamples: int = 2_000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (resampling items) of Sonnet share, easy escalated, hard caught and
    agreement. A resample without easy (or hard) items leaves that figure out of its distribution."""
    rng = np.random.default_rng(seed)
    h = np.asarray(hard, dtype=bool)
    s = np.asarray(strong, dtype=bool)
    index = rng.integers(0, len(h), size=(resamples, len(h)))
    rh, rs = h[index], s[index]
    easy_n, hard_n = (~rh).sum(axis=1), rh.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = {
            "sonnet_share": rs.mean(axis=1),
            "easy_escalated": (rs & ~rh).sum(axis=1) / easy_n,
            "hard_caught": (rs & rh).sum(axis=1) / hard_n,
            "agreement": (rs == rh).mean(axis=1),
        }
    tail = (1 - level) / 2 * 100
    out: dict[str, tuple[float, float]] = {}
    for name, values in draws.items():
        kept = values[~np.isnan(values)]
        if kept.size == 0:
            out[name] = (math.nan, math.nan)
        else:
            low, high = np.percentile(kept, [tail, 100 - tail])
            out[name] = (float(low), float(high))
    return out
