"""Fits the self-contained question model (`switchboard.routing.questions`; docs/router.md, "Self-contained
questions").

    cd bench && ../.venv/bin/python -m router_lab.questions [--data /work/shared/datasets/routing] [--select]

1. Data (`router_lab.question_data`): GSM8K's train split (target: calculation steps of the reference
   solution) and ulab's multiple-choice sets (target: large − small open models' score gap), every item that
   matches an evaluation question removed first. No RouteLLM evaluation label is read here.
2. Both kinds: the question's length (log characters of stem and options). Word problems had a ridge
   regression over hashed words and word pairs and shape features, fitted on the steps, until round 8
   (`STEPS_SETTING`; `--select` still compares it).
3. `--select` prints the comparisons the settings below were chosen from: for multiple choice, APGR of the
   small → large pair within each ulab task, for the length features and, leave-one-task-out (fitted on the
   other four tasks, as MMLU is a task the model never saw), for ridge regressions on the static embedding's
   mean vector of the question (`switchboard.routing.embedding`, the vectors `./dev train-router` builds)
   plus its length, fitted on the variation *within* each task (features and target centred per task); for
   word problems, 5-fold Spearman with the steps. Round 8 (`select_computation`): a fixed "needs
   computation" prior with and without length on both proxy pairs, and word problems on ulab's GSM8K items
   with Mistral-7B → 51B.
4. The logit: offset and scale per kind put the training population's z-scores at the escalation
   artifact's thresholds so that `TARGET_SHARES` of it go to Sonnet under `balanced` and `quality`; re-run
   this script whenever the escalation artifact is refitted (a test checks the two agree).
Deterministic: same data, same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from router_lab import embedding as built_embedding
from router_lab import question_data
from router_lab.embedding import StaticEmbedding
from router_lab.metrics import router_metrics
from switchboard.routing.escalation import ARTIFACT_NAME as ESCALATION_ARTIFACT
from switchboard.routing.questions import (
    ARTIFACT_NAME,
    KINDS,
    SHAPE_NAMES,
    KindModel,
    ParsedQuestion,
    QuestionKind,
    QuestionModel,
    bucket,
    parse_question,
    question_terms,
    shape_features,
)

Matrix = NDArray[np.float64]
ARTIFACTS = Path(__file__).resolve().parents[2] / "server" / "switchboard" / "routing" / "artifacts"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "routing"
FOLDS = 5


@dataclass(frozen=True)
class Setting:
    buckets: int
    alpha: float  # ridge penalty on every weight
    terms: bool  # hashed words and pairs, or shape features only


@dataclass(frozen=True)
class EmbeddingSetting:
    alpha: float  # ridge penalty on the embedding's and the length's weights
    target: str  # "gap" (large − small score), "fail" (1 − small score) or "log steps" (word problems)


# Chosen with --select (docs/router.md lists the comparison). None: the question's length alone (stem plus
# options, `log_total_chars`). For multiple choice, the rule (best mean leave-one-task-out APGR over ulab's
# five tasks) picked an embedding model (gap, alpha 30), but its one reading on RouteLLM's MMLU was below
# length's (0.555 against 0.586; docs/router.md, reading 5): ulab's 8B → 51B gaps within its sets do not
# carry over to Mixtral → GPT-4 on MMLU, so the shipped setting stays length. Word problems (round 8): on
# ulab's GSM8K items with Mistral-7B → 51B (`select_computation`), the steps model (a ridge on GSM8K train's
# calculation steps, `STEPS_SETTING`, shipped in rounds 1-7) ties length (0.537 against 0.539), and a tie
# goes to the simpler.
STEPS_SETTING = Setting(buckets=2048, alpha=300.0, terms=True)
SETTINGS: dict[QuestionKind, Setting | None] = {
    "word_problem": None,
    "multiple_choice": None,
}
LENGTH = SHAPE_NAMES.index("log_total_chars")
# Share of a kind's training population sent to Sonnet at each preference's threshold: exam items and word
# problems are where Haiku 4.5 is closest to Sonnet 4.5, so `balanced` escalates few of them and `quality`
# the harder third.
TARGET_SHARES = {"balanced": 0.10, "quality": 0.35}


@dataclass(frozen=True)
class KindData:
    questions: list[ParsedQuestion]
    target: Matrix
    small: Matrix
    large: Matrix
    task: list[str]


def kind_data(
    items: list[question_data.TrainingItem], kind: QuestionKind, sources: set[str], family: bool = False
) -> KindData:
    """One kind's items from `sources`; with `family`, the cheap side is Mistral-7B (the second proxy pair,
    `question_data.ULAB_FAMILY_SMALL`) instead of the 8-9B pair."""
    rows = [(parse_question(i.prompt), i) for i in items if i.source in sources]
    kept = [(q, i) for q, i in rows if q is not None and q.kind == kind]
    return KindData(
        questions=[q for q, _ in kept],
        target=np.array([i.target for _, i in kept]),
        small=np.array([i.family_small if family else i.small for _, i in kept]),
        large=np.array([i.large for _, i in kept]),
        task=[i.source for _, i in kept],
    )


def design(questions: list[ParsedQuestion], setting: Setting) -> tuple[Matrix, Matrix]:
    """(hashed term presence, raw shape features)."""
    terms = np.zeros((len(questions), setting.buckets if setting.terms else 0))
    if setting.terms:
        for row, question in enumerate(questions):
            for term in set(question_terms(question)):
                terms[row, bucket(term, setting.buckets)] = 1.0
    shapes = np.array([shape_features(q) for q in questions])
    return terms, shapes


def fit_ridge(terms: Matrix, shapes: Matrix, y: Matrix, setting: Setting) -> KindModel:
    mean = shapes.mean(axis=0)
    scale = shapes.std(axis=0)
    scale[scale == 0] = 1.0
    x = np.hstack([terms, (shapes - mean) / scale])
    x_mean = x.mean(axis=0)
    centred = x - x_mean
    gram = centred.T @ centred + setting.alpha * np.eye(x.shape[1])
    w = np.linalg.solve(gram, centred.T @ (y - y.mean()))
    intercept = float(y.mean() - x_mean @ w)
    n_terms = terms.shape[1]
    scores = x @ w + intercept
    return KindModel(
        buckets=n_terms,
        term_weights=[float(v) for v in w[:n_terms]],
        shape_mean=[float(v) for v in mean],
        shape_scale=[float(v) for v in scale],
        shape_weights=[float(v) for v in w[n_terms:]],
        intercept=intercept,
        score_mean=float(scores.mean()),
        score_std=float(scores.std()) or 1.0,
        offset=0.0,
        scale=1.0,
    )


def length_model(shapes: Matrix) -> KindModel:
    """The question's length as a model: weight 1 on standardised `log_total_chars`, nothing else."""
    mean, scale = shapes.mean(axis=0), shapes.std(axis=0)
    scale[scale == 0] = 1.0
    weights = [0.0] * shapes.shape[1]
    weights[SHAPE_NAMES.index("log_total_chars")] = 1.0
    return KindModel(
        buckets=0,
        term_weights=[],
        shape_mean=[float(v) for v in mean],
        shape_scale=[float(v) for v in scale],
        shape_weights=weights,
        intercept=0.0,
        score_mean=0.0,
        score_std=1.0,
        offset=0.0,
        scale=1.0,
    )


# The "needs computation" prior (round 8; not shipped: no training set confirmed it, docs/router.md): what
# separates a cheap model from a strong one on exam items is said to be quantitative, multi-step work —
# numbers, units, symbols and formulas, "calculate / how many / what is the value", numeric options.
_CALCULATION_WORDS = re.compile(
    r"\b(?:calculate|compute|how many|how much|what is the value|value of|solve|evaluate|equals?|equation"
    r"|probability|expected|ratio|rate|speed|velocity|acceleration|energy|mass|force|moles?|concentration"
    r"|sum|product|integers?|derivative|integral|matrix|polynomial|modulo|mod|percent|percentage|average"
    r"|mean|variance|interest|cost|price|total|approximately|estimate|minimum|maximum|order of)\b",
    re.I,
)
_SYMBOLS = re.compile(
    r"[=+*/^×÷√∑∫≤≥≠→↔⊃∨∧¬∀∃≡πθλμσΔ]|\b[a-zA-Z]\s*[=<>]|\b[xyznk]\b|\b[a-z]\^|\(\s*[a-z]\s*\)"
)
_UNITS = re.compile(r"\d\s*(?:m|cm|mm|km|kg|g|mg|s|ms|J|kJ|N|W|V|A|Hz|K|mol|L|mL|eV|Pa|atm|°[CF]?|%)\b")
_ANY_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?%?")


def computation_score(question: ParsedQuestion) -> float:
    """How much the question looks like a computation, with fixed weights (a prior, not fitted): log counts of
    numbers, calculation words, symbols and units in stem and options, plus the share of options that are
    numbers or expressions."""
    text = "\n".join((question.stem, *question.options))
    shaped = sum(1 for o in question.options if _ANY_NUMBER.search(o) or _SYMBOLS.search(o))
    counts = (_ANY_NUMBER, _CALCULATION_WORDS, _SYMBOLS, _UNITS)
    return sum(math.log1p(len(p.findall(text))) for p in counts) + shaped / max(1, len(question.options))


def standardised(values: Matrix) -> Matrix:
    spread = float(values.std())
    return (values - values.mean()) / (spread or 1.0)


def question_text(question: ParsedQuestion) -> str:
    """What the embedding reads: the stem, then each option on its own line (no letters, no "Answer:")."""
    return "\n".join((question.stem, *question.options))


def embed(questions: list[ParsedQuestion], embedding: StaticEmbedding) -> Matrix:
    """The mean word-piece vector of each question's text."""
    return np.array([embedding.mean(question_text(q)) for q in questions], dtype=np.float64)


def centred_by_task(values: Matrix, tasks: list[str]) -> Matrix:
    out = values.astype(np.float64)
    labels = np.array(tasks)
    for task in sorted(set(tasks)):
        pick = labels == task
        out[pick] = out[pick] - out[pick].mean(axis=0)
    return out


def choice_target(data: KindData, setting: EmbeddingSetting) -> Matrix:
    if setting.target == "log steps":
        return np.log(data.target)
    return data.large - data.small if setting.target == "gap" else 1.0 - data.small


def embedding_features(vectors: Matrix, shapes: Matrix) -> Matrix:
    """The embedding and the question's length (log characters of stem and options), side by side."""
    return np.hstack([vectors, shapes[:, LENGTH : LENGTH + 1]])


def fit_embedding(features: Matrix, data: KindData, setting: EmbeddingSetting) -> Matrix:
    """Weights of a ridge regression of the target on `features`, both centred within each task: a set's
    overall difficulty is not what it learns, only which items are harder than their set-mates."""
    x = centred_by_task(features, data.task)
    y = centred_by_task(choice_target(data, setting), data.task)
    gram = x.T @ x + setting.alpha * np.eye(x.shape[1])
    return np.asarray(np.linalg.solve(gram, x.T @ y), dtype=np.float64)


def leave_one_task_out(features: Matrix, data: KindData, setting: EmbeddingSetting) -> Matrix:
    """Each task's items scored by weights fitted on the other tasks only."""
    out = np.zeros(len(data.questions))
    tasks = np.array(data.task)
    for task in sorted(set(data.task)):
        held = tasks == task
        out[held] = features[held] @ fit_embedding(features[~held], subset(data, ~held), setting)
    return out


def subset(data: KindData, pick: NDArray[np.bool_]) -> KindData:
    return KindData(
        questions=[q for q, keep in zip(data.questions, pick, strict=True) if keep],
        target=data.target[pick],
        small=data.small[pick],
        large=data.large[pick],
        task=[t for t, keep in zip(data.task, pick, strict=True) if keep],
    )


def predict(model: KindModel, terms: Matrix, shapes: Matrix) -> Matrix:
    x_shape = (shapes - np.array(model.shape_mean)) / np.array(model.shape_scale)
    out = x_shape @ np.array(model.shape_weights) + model.intercept
    if terms.shape[1]:
        out = out + terms @ np.array(model.term_weights)
    return out


def folds(n: int) -> NDArray[np.int64]:
    return np.random.default_rng(0).permutation(n) % FOLDS


def cross_validated(data: KindData, setting: Setting) -> Matrix:
    terms, shapes = design(data.questions, setting)
    out = np.zeros(len(data.questions))
    fold = folds(len(data.questions))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        model = fit_ridge(terms[train], shapes[train], data.target[train], setting)
        out[test] = predict(model, terms[test], shapes[test])
    return out


def spearman(a: Matrix, b: Matrix) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b + 1e-9 * np.arange(len(b)))).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def per_task_apgr(scores: Matrix, data: KindData) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in sorted(set(data.task)):
        pick = np.array([t == task for t in data.task])
        out[task] = router_metrics(scores[pick], data.small[pick], data.large[pick]).apgr
    return out


def length_of(data: KindData) -> Matrix:
    return np.array([float(len(q.stem) + sum(len(o) for o in q.options)) for q in data.questions])


RIDGE_CANDIDATES = [
    Setting(0, 300.0, terms=False),
    Setting(1024, 300.0, terms=True),
    Setting(1024, 3000.0, terms=True),
    Setting(2048, 300.0, terms=True),
]


EMBEDDING_CANDIDATES = [
    EmbeddingSetting(alpha, target) for target in ("gap", "fail") for alpha in (3.0, 10.0, 30.0, 100.0, 300.0)
]


def select(items: list[question_data.TrainingItem], embedding_folder: Path) -> None:
    """Multiple choice: APGR (small → large pair) within each ulab task, every fitted candidate scored
    leave-one-task-out; the rule is the best mean over the five tasks, a tie (within 0.01) going to the
    simpler. Word problems: out-of-fold Spearman with the steps."""
    mc = kind_data(items, "multiple_choice", set(question_data.ULAB_MULTIPLE_CHOICE))
    _, shapes = design(mc.questions, Setting(0, 0.0, terms=False))
    column = {name: shapes[:, i] for i, name in enumerate(SHAPE_NAMES)}
    print(f"multiple choice ({len(mc.questions)} ulab items), APGR within each task:")
    for name in ("log_total_chars", "log_chars", "log_option_chars"):
        print(f"  {name:52s} {fmt(per_task_apgr(column[name], mc))}")
    embedding = built_embedding.built(embedding_folder)
    features = embedding_features(embed(mc.questions, embedding), shapes)
    for setting in EMBEDDING_CANDIDATES:
        scores = leave_one_task_out(features, mc, setting)
        name = f"embedding + length on {setting.target}, alpha {setting.alpha:g}, LOTO"
        print(f"  {name:52s} {fmt(per_task_apgr(scores, mc))}")
    select_computation(items)
    wp = kind_data(items, "word_problem", {"gsm8k-train"})
    steps = wp.target
    print(f"word problems ({len(wp.questions)} GSM8K train items), Spearman with the steps:")
    print(f"  length {spearman(length_of(wp), steps):.3f}")
    for setting in RIDGE_CANDIDATES:
        scores = cross_validated(replace(wp, target=np.log(steps)), setting)
        print(f"  ridge, {setting.buckets} buckets, alpha {setting.alpha:g}: {spearman(scores, steps):.3f}")
    _, wp_shapes = design(wp.questions, Setting(0, 0.0, terms=False))
    standard = (wp_shapes - wp_shapes.mean(axis=0)) / np.where(
        wp_shapes.std(axis=0) > 0, wp_shapes.std(axis=0), 1
    )
    wp_features = np.hstack([embed(wp.questions, embedding), standard])
    one_task = replace(wp, task=["gsm8k-train"] * len(wp.questions))
    for alpha in (1.0, 10.0, 100.0):
        fold, scores = folds(len(wp.questions)), np.zeros(len(wp.questions))
        for k in range(FOLDS):
            train = fold != k
            weights = fit_embedding(
                wp_features[train], subset(one_task, train), EmbeddingSetting(alpha, "log steps")
            )
            scores[~train] = wp_features[~train] @ weights
        print(
            f"  ridge on the embedding and the shape features, alpha {alpha:g}: {spearman(scores, steps):.3f}"
        )


COMPUTATION_WEIGHTS = (0.25, 0.5, 1.0, 2.0)


def select_computation(items: list[question_data.TrainingItem]) -> None:
    """Round 8: the "needs computation" prior alone and added to length (z-scores, `COMPUTATION_WEIGHTS`) on
    ulab's multiple-choice sets, for both proxy pairs (8-9B → 51B and Mistral-7B → 51B): APGR within each
    task, and over the five pooled. Then word problems on ulab's GSM8K items with the Mistral-7B pair (the
    8-9B pair's gap there, 0.85 → 0.87, is too small to rank on): length, the steps model, their sum."""
    sources: set[str] = set(question_data.ULAB_MULTIPLE_CHOICE)
    for family in (False, True):
        mc = kind_data(items, "multiple_choice", sources, family=family)
        pair = "Mistral-7B" if family else "8-9B"
        print(f"multiple choice, {pair} → 51B, the computation prior (APGR within each task | pooled):")
        length = standardised(np.log(length_of(mc)))
        computation = standardised(np.array([computation_score(q) for q in mc.questions]))
        rows = [("length", length), ("computation", computation)]
        rows += [(f"length + {w:g} · computation", length + w * computation) for w in COMPUTATION_WEIGHTS]
        for name, scores in rows:
            pooled = router_metrics(scores, mc.small, mc.large).apgr
            print(f"  {name:52s} {fmt(per_task_apgr(scores, mc))} | pooled {pooled:.3f}")
    ulab_wp = kind_data(items, "word_problem", {"gsm8k"}, family=True)
    train_wp = kind_data(items, "word_problem", {"gsm8k-train"})
    terms, shapes = design(train_wp.questions, STEPS_SETTING)
    steps_model = fit_ridge(terms, shapes, np.log(train_wp.target), STEPS_SETTING)
    steps = predict(steps_model, *design(ulab_wp.questions, STEPS_SETTING))
    length = standardised(np.log(length_of(ulab_wp)))
    print(f"word problems, ulab GSM8K ({len(ulab_wp.questions)} items), Mistral-7B → 51B, APGR:")
    for name, scores in (
        ("length", length),
        ("steps model (fitted on GSM8K train)", steps),
        ("length + steps model", length + standardised(steps)),
    ):
        print(f"  {name:52s} {router_metrics(scores, ulab_wp.small, ulab_wp.large).apgr:.3f}")


def fmt(values: dict[str, float]) -> str:
    mean = float(np.mean(list(values.values())))
    return " ".join(f"{k[:8]} {v:.3f}" for k, v in values.items()) + f" | mean {mean:.3f}"


def calibrate(model: KindModel, z: Matrix, escalation: dict[str, object]) -> KindModel:
    """offset + scale · z crosses the `balanced` and `quality` thresholds at `TARGET_SHARES` of the
    population (the escalation model's intercept is part of the logit, the ask's own parts are not)."""
    intercept = float(escalation["intercept"])  # type: ignore[arg-type]
    thresholds: dict[str, float] = escalation["thresholds"]  # type: ignore[assignment]

    def needed(preference: str) -> float:
        p = thresholds[preference]
        return math.log(p / (1 - p)) - intercept

    z_balanced = float(np.quantile(z, 1 - TARGET_SHARES["balanced"]))
    z_quality = float(np.quantile(z, 1 - TARGET_SHARES["quality"]))
    scale = (needed("balanced") - needed("quality")) / (z_balanced - z_quality)
    offset = needed("balanced") - scale * z_balanced
    return replace(model, offset=offset, scale=scale)


def train(items: list[question_data.TrainingItem], escalation: dict[str, object]) -> QuestionModel:
    sources: dict[QuestionKind, set[str]] = {
        "word_problem": {"gsm8k-train"},
        "multiple_choice": set(question_data.ULAB_MULTIPLE_CHOICE),
    }
    kinds: dict[str, KindModel] = {}
    shares: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        data = kind_data(items, kind, sources[kind])
        setting = SETTINGS[kind]
        if setting is None:
            terms, shapes = design(data.questions, Setting(0, 0.0, terms=False))
            fitted = length_model(shapes)
        else:
            terms, shapes = design(data.questions, setting)
            fitted = fit_ridge(terms, shapes, np.log(data.target), setting)
        z = (predict(fitted, terms, shapes) - fitted.score_mean) / fitted.score_std
        kinds[kind] = calibrate(fitted, z, escalation)
        logits = kinds[kind].offset + kinds[kind].scale * z + float(escalation["intercept"])  # type: ignore[arg-type]
        thresholds: dict[str, float] = escalation["thresholds"]  # type: ignore[assignment]
        shares[kind] = {
            pref: round(float(np.mean(logits >= math.log(p / (1 - p)))), 4) for pref, p in thresholds.items()
        }
    return QuestionModel(
        kinds=kinds,
        meta={
            "escalation_intercept": escalation["intercept"],
            "escalation_thresholds": escalation["thresholds"],
            "target_shares": TARGET_SHARES,
            "training_shares": shares,
            "settings": {k: (s.__dict__ if s else "length") for k, s in SETTINGS.items()},
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ARTIFACTS)
    parser.add_argument("--select", action="store_true", help="print the cross-validated comparison only")
    parser.add_argument(
        "--embedding", type=Path, default=built_embedding.BUILT, help="the built static embedding (--select)"
    )
    args = parser.parse_args(argv)
    loaded, before = question_data.load(args.data)
    print(f"training items before decontamination: {before}")
    print(f"removed (matching an evaluation question): { {k: dict(v) for k, v in loaded.removed.items()} }")
    if args.select:
        select(loaded.items, args.embedding)
        return
    escalation = json.loads((args.out / ESCALATION_ARTIFACT).read_text(encoding="utf-8"))
    model = train(loaded.items, escalation)
    model = QuestionModel(
        kinds=model.kinds, meta={**model.meta, "removed": {k: dict(v) for k, v in loaded.removed.items()}}
    )
    path = args.out / ARTIFACT_NAME
    path.write_text(model.to_json(), encoding="utf-8")
    shares = model.meta["training_shares"]
    print(f"wrote {path} ({path.stat().st_size:,} bytes); training population to Sonnet: {shares}")


if __name__ == "__main__":
    main()
