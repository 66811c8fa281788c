"""The learned difficulty model: P(the cheap model falls short of the strong one) for a prompt.

A logistic regression over the features of `text_features` (TF-IDF word n-grams plus standardised numeric
features), trained by `bench/router_lab/train.py` on soft labels: the strong model's win rate against the
cheap one, ties counted as half a win (RouteLLM's "strong win rate"). At run time it needs only plain Python
and numpy (to read the artifact).

The artifact is an uncompressed-member zip of `.npy` arrays written with fixed timestamps, so the same
training run gives the same bytes.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from router_lab.legacy.text_features import NUMERIC_FEATURE_NAMES, excerpt, ngram_counts, numeric_features

ARTIFACT_NAME = "difficulty_model.npz"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DifficultyWeights:
    """Everything training produces, as arrays (the artifact's content)."""

    vocabulary: list[str]
    idf: NDArray[np.float32]
    ngram_weights: NDArray[np.float32]
    numeric_mean: NDArray[np.float64]
    numeric_scale: NDArray[np.float64]
    numeric_weights: NDArray[np.float64]
    intercept: float
    threshold: float
    # share_thresholds[k]: the probability threshold that sends k% of the validation mix to the strong model.
    share_thresholds: NDArray[np.float64] = field(default_factory=lambda: np.linspace(1.0, 0.0, 101))
    meta: dict[str, Any] = field(default_factory=dict[str, Any])


def _doubles(values: NDArray[Any]) -> array[float]:
    """A compact array of doubles, filled from raw bytes (no transient Python floats)."""
    doubles: array[float] = array("d")
    doubles.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return doubles


class DifficultyModel:
    """Scores prompts; built once from `DifficultyWeights` (a dict lookup per n-gram at run time)."""

    def __init__(self, weights: DifficultyWeights) -> None:
        if len(weights.numeric_weights) != len(NUMERIC_FEATURE_NAMES):
            raise ValueError("artifact does not match the numeric features of this version")
        self.weights = weights
        # n-gram → row index, with the numbers kept in compact arrays: a dict of float tuples cost ~10 MB
        # more of the server's memory for the same lookups.
        self._index: dict[str, int] = {gram: i for i, gram in enumerate(weights.vocabulary)}
        self._idf = _doubles(weights.idf)
        self._weights = _doubles(weights.ngram_weights)
        self._numeric = list(
            zip(
                weights.numeric_mean.tolist(),
                weights.numeric_scale.tolist(),
                weights.numeric_weights.tolist(),
                strict=True,
            )
        )
        self.intercept = weights.intercept
        self.threshold = weights.threshold
        self.share_thresholds = weights.share_thresholds.tolist()
        self.meta = weights.meta

    def share_at(self, threshold: float) -> float:
        """The share of the validation mix at or above `threshold` (0..1, interpolated)."""
        table = self.share_thresholds
        for k in range(1, len(table)):
            if table[k] <= threshold:
                span = table[k - 1] - table[k]
                frac = (table[k - 1] - threshold) / span if span > 0 else 1.0
                return (k - 1 + min(1.0, max(0.0, frac))) / (len(table) - 1)
        return 1.0

    def threshold_at(self, share: float) -> float:
        """The probability threshold that sends `share` (0..1) of the validation mix to the strong model."""
        table = self.share_thresholds
        position = min(1.0, max(0.0, share)) * (len(table) - 1)
        k = min(int(position), len(table) - 2)
        frac = position - k
        return table[k] + (table[k + 1] - table[k]) * frac

    def text_logit(self, prompt: str) -> float:
        """The n-gram part of the logit: TF-IDF (sublinear tf, L2-normalised) · weights."""
        dot = 0.0
        norm = 0.0
        index, idf, weights = self._index, self._idf, self._weights
        for gram, count in ngram_counts(excerpt(prompt)).items():
            row = index.get(gram)
            if row is None:
                continue
            value = (1.0 + math.log(count)) * idf[row]
            norm += value * value
            dot += value * weights[row]
        return dot / math.sqrt(norm) if norm > 0.0 else 0.0

    def numeric_logit(self, prompt: str) -> float:
        values = numeric_features(prompt)
        return sum(
            (value - mean) / scale * weight
            for value, (mean, scale, weight) in zip(values, self._numeric, strict=True)
        )

    def logit(self, prompt: str) -> float:
        """The learned log-odds that the cheap model falls short on `prompt`."""
        return self.intercept + self.text_logit(prompt) + self.numeric_logit(prompt)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _array_bytes(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _text_array(text: str) -> NDArray[np.uint8]:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def save_weights(weights: DifficultyWeights, path: Path) -> None:
    arrays: dict[str, NDArray[Any]] = {
        "vocabulary": _text_array("\n".join(weights.vocabulary)),
        "idf": weights.idf.astype(np.float32),
        "ngram_weights": weights.ngram_weights.astype(np.float32),
        "numeric_mean": weights.numeric_mean.astype(np.float64),
        "numeric_scale": weights.numeric_scale.astype(np.float64),
        "numeric_weights": weights.numeric_weights.astype(np.float64),
        "scalars": np.array([weights.intercept, weights.threshold], dtype=np.float64),
        "share_thresholds": weights.share_thresholds.astype(np.float64),
        "meta": _text_array(json.dumps(weights.meta, sort_keys=True)),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _array_bytes(array))


def read_weights(source: IO[bytes]) -> DifficultyWeights:
    """Reads an artifact written by `save_weights` (no pickles: plain arrays only)."""
    with np.load(source, allow_pickle=False) as archive:
        scalars = archive["scalars"]
        vocabulary_text = archive["vocabulary"].tobytes().decode("utf-8")
        return DifficultyWeights(
            vocabulary=vocabulary_text.split("\n") if vocabulary_text else [],
            idf=archive["idf"],
            ngram_weights=archive["ngram_weights"],
            numeric_mean=archive["numeric_mean"],
            numeric_scale=archive["numeric_scale"],
            numeric_weights=archive["numeric_weights"],
            intercept=float(scalars[0]),
            threshold=float(scalars[1]),
            share_thresholds=archive["share_thresholds"],
            meta=json.loads(archive["meta"].tobytes().decode("utf-8")),
        )
