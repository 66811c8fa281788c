"""The public routing data (`/work/shared/datasets/routing`, see its README) as labelled, split examples.

Used by `router_lab.train` and `bench/router_eval.py`; never at run time. Each example says how
well a cheap and a strong model answered one prompt:

* `gsm8k`, `mmlu` — RouteLLM's evals (Apache-2.0): Mixtral-8x7B-Instruct (cheap) vs GPT-4-1106 (strong),
  correct or not. Prompts in `contaminated_prompts.jsonl` are dropped.
* `ulab` — LLMRouter's query sets (MIT): Llama-3.1-8B-Instruct (cheap: the best 7–9B general model on the
  training file) vs Llama-3.1-Nemotron-51B-Instruct (strong: the best model on the training file), scores
  0–1. The scores of the other small models are kept for training-label augmentation.

Splits are fixed and documented in docs/router.md:

* RouteLLM sets: a CRC-32 of the prompt's *key* (its normalised question stem) picks the split, so the same
  question lands in the same split wherever it appears: buckets 0–29 test, 30–44 validation, the rest train.
* ulab: the published `dcrouter_test.json` is the test split; the training file is cut into validation and
  train by the same buckets (30–44 validation).
* Nothing whose key appears in any test split is used for training or validation (the ulab files share
  GSM8K/MMLU-like questions with RouteLLM's, and 119 of ulab's test questions are also in its training file);
  nothing whose key is in validation is used for training; exact duplicates are dropped within a split.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Source = Literal["gsm8k", "mmlu", "ulab"]
Split = Literal["train", "val", "test"]
SOURCES: tuple[Source, ...] = ("gsm8k", "mmlu", "ulab")

ROUTELLM_CHEAP = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ROUTELLM_STRONG = "gpt-4-1106-preview"
ULAB_CHEAP = "llama-3.1-8b-instruct"
ULAB_STRONG = "llama-3.1-nemotron-51b-instruct"
ULAB_SMALL_MODELS = (
    "qwen2.5-7b-instruct",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct-v0.3",
    "gemma-2-9b-it",
)

TEST_BUCKETS = range(0, 30)
VAL_BUCKETS = range(30, 45)
_KEY_CHARS = 300
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Example:
    source: Source
    prompt: str
    cheap: float  # the cheap model's score, 0..1
    strong: float  # the strong model's score, 0..1
    split: Split
    group: str  # MMLU subject, ulab task name, or "gsm8k"
    key: str
    small_model_scores: tuple[float, ...] = ()  # ulab only, in ULAB_SMALL_MODELS order

    @property
    def gain(self) -> float:
        return self.strong - self.cheap


def question_key(prompt: str) -> str:
    """The normalised question stem (answer options cut off), used to match a question across sources."""
    stem = prompt.split("\nA. ")[0]
    return _NOT_ALNUM.sub(" ", stem.lower()).strip()[:_KEY_CHARS]


def bucket(key: str) -> int:
    return zlib.crc32(key.encode()) % 100


def hashed_split(key: str) -> Split:
    b = bucket(key)
    return "test" if b in TEST_BUCKETS else "val" if b in VAL_BUCKETS else "train"


def _contaminated(root: Path, name: str) -> set[str]:
    path = root / "routellm" / name / "contaminated_prompts.jsonl"
    with path.open(encoding="utf-8") as lines:
        return {json.loads(line)["eval_prompt"] for line in lines if line.strip()}


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _routellm_example(source: Source, row: dict[str, str], group: str) -> Example:
    key = question_key(row["prompt"])
    return Example(
        source=source,
        prompt=row["prompt"],
        cheap=float(row[ROUTELLM_CHEAP] == "True"),
        strong=float(row[ROUTELLM_STRONG] == "True"),
        split=hashed_split(key),
        group=group,
        key=key,
    )


def load_gsm8k(root: Path) -> list[Example]:
    skip = _contaminated(root, "gsm8k")
    rows = _csv_rows(root / "routellm" / "gsm8k" / "gsm8k_responses.csv")
    return [_routellm_example("gsm8k", row, "gsm8k") for row in rows if row["prompt"] not in skip]


def load_mmlu(root: Path) -> list[Example]:
    skip = _contaminated(root, "mmlu")
    examples: list[Example] = []
    for path in sorted((root / "routellm" / "mmlu" / "responses").glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        rows = _csv_rows(path)
        examples += [_routellm_example("mmlu", row, subject) for row in rows if row["prompt"] not in skip]
    return examples


def _ulab_tasks(root: Path, part: str) -> dict[str, str]:
    tasks: dict[str, str] = {}
    with (root / "llmrouter_ulab" / f"default_query_{part}.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            tasks.setdefault(record["query"].strip(), record["task_name"])
    return tasks


def load_ulab(root: Path) -> list[Example]:
    examples: list[Example] = []
    for part in ("train", "test"):
        tasks = _ulab_tasks(root, part)
        with (root / "llmrouter_ulab" / f"dcrouter_{part}.json").open(encoding="utf-8") as handle:
            records = json.load(handle)
        for record in records:
            prompt: str = record["question"]
            scores: dict[str, float] = record["scores"]
            key = question_key(prompt)
            split: Split = "test" if part == "test" else "val" if bucket(key) in VAL_BUCKETS else "train"
            examples.append(
                Example(
                    source="ulab",
                    prompt=prompt,
                    cheap=float(scores[ULAB_CHEAP]),
                    strong=float(scores[ULAB_STRONG]),
                    split=split,
                    group=tasks.get(prompt.strip(), "unknown"),
                    key=key,
                    small_model_scores=tuple(float(scores[m]) for m in ULAB_SMALL_MODELS),
                )
            )
    return examples


def _full_text_key(prompt: str) -> str:
    return _NOT_ALNUM.sub(" ", prompt.lower()).strip()


def decontaminate(examples: list[Example]) -> list[Example]:
    """Test examples as they are; train/val without test questions, train without val ones, no duplicates."""
    test_keys = {e.key for e in examples if e.split == "test"}
    val_keys = {e.key for e in examples if e.split == "val"}
    seen: set[tuple[str, str]] = set()
    kept: list[Example] = []
    for example in examples:
        if example.split != "test":
            if example.key in test_keys or (example.split == "train" and example.key in val_keys):
                continue
            identity = (example.split, _full_text_key(example.prompt))
            if identity in seen:
                continue
            seen.add(identity)
        kept.append(example)
    return kept


def load_examples(root: Path) -> list[Example]:
    """Every example of the three sources, split and decontaminated."""
    return decontaminate(load_gsm8k(root) + load_mmlu(root) + load_ulab(root))


def select(examples: list[Example], split: Split, source: Source | None = None) -> list[Example]:
    return [e for e in examples if e.split == split and (source is None or e.source == source)]
