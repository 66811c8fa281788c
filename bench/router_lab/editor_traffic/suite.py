"""The editor-traffic suite: prompts as people type them in an editor chat, with their attached context,
each labelled with the tier that does it well (docs/router.md, "Editor-traffic suite").

Items live in `data/*.jsonl`, one per line. An attached file is either given inline (`text`) or
specified (`language`, `lines`, optionally a `focus` snippet) and expanded by `codegen.generate`, seeded by
the item's id and the file's path, so the same suite always expands to the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router_lab.editor_traffic.codegen import generate, languages

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
# Round 2's fresh batch (fresh/README.md): its test, released to development in round 3.
FRESH = HERE / "fresh"
# The second fresh batch (fresh2/README.md): round 3's test, released to development in round 4.
FRESH2 = HERE / "fresh2"
# The third fresh batch (fresh3/README.md): round 4's test, read once, released to development in round 5.
FRESH3 = HERE / "fresh3"
# The fourth fresh batch (fresh4/README.md): round 5's test, read once, released to development in round 6.
FRESH4 = HERE / "fresh4"
# The fifth fresh batch (fresh5/README.md): round 6's test, read once, released to development in round 7.
FRESH5 = HERE / "fresh5"
# Fresh batches the router may learn from, in the order they were released. Any other `freshN/` folder is a
# test batch: never fitted on, read through the bench's aggregates only.
RELEASED_BATCHES: tuple[str, ...] = ("fresh", "fresh2", "fresh3", "fresh4", "fresh5")
_BATCH_NAME = re.compile(r"fresh\d*")
BATCHES = HERE  # where the fresh batch folders live (a test may point it at a temporary copy)

Tier = Literal["haiku", "sonnet"]
Category = Literal[
    "explain",
    "rename",
    "fix_error",
    "write_test",
    "refactor_small",
    "refactor_large",
    "one_liner",
    "api_usage",
    "config",
    "performance",
    "concurrency",
    "security_review",
    "design_plan",
    "architecture",
    "docs",
]
Shape = Literal["none", "small", "large", "several"]
Trap = Literal["long_easy", "short_hard", "keyword_easy"]
TIERS: tuple[str, ...] = get_args(Tier)
CATEGORIES: tuple[str, ...] = get_args(Category)
SHAPES: tuple[str, ...] = get_args(Shape)
TRAPS: tuple[str, ...] = get_args(Trap)
# What each trap means: long but easy, short but hard, a telling word used in an ordinary sense.
TRAP_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "long_easy": ("haiku", ("large", "several")),
    "short_hard": ("sonnet", ("none", "small")),
    "keyword_easy": ("haiku", ("none", "small", "large", "several")),
}
LARGE_LINES = 200  # one attached file of at least this many lines is "large"
MIN_LINES, MAX_LINES = 1, 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttachedSpec(_Strict):
    """One attached file or selection, as stored: inline text, or a spec the generator expands."""

    path: Annotated[str, Field(min_length=1)]
    language: str
    lines: Annotated[int, Field(ge=MIN_LINES, le=MAX_LINES)]
    text: str | None = None
    focus: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AttachedSpec:
        if self.text is not None:
            if self.focus is not None:
                raise ValueError(f"{self.path}: inline text and a focus snippet exclude each other")
            if len(self.text.splitlines()) != self.lines:
                raise ValueError(
                    f"{self.path}: inline text has {len(self.text.splitlines())} lines, not {self.lines}"
                )
        elif self.language not in languages():
            raise ValueError(f"{self.path}: no generator for language {self.language!r}")
        elif self.focus is not None and len(self.focus.splitlines()) > self.lines:
            raise ValueError(f"{self.path}: the focus is longer than {self.lines} lines")
        return self


class ItemSpec(_Strict):
    """One suite item as stored in JSONL."""

    id: Annotated[str, Field(pattern=r"^[a-z_]+-\d{3,}$")]
    category: Category
    tier: Tier
    shape: Shape
    prompt: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10)]
    context: list[AttachedSpec] = Field(default_factory=list[AttachedSpec])
    trap: Trap | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ItemSpec:
        actual = shape_of([spec.lines for spec in self.context])
        if actual != self.shape:
            raise ValueError(f"{self.id}: labelled shape {self.shape!r}, but the context is {actual!r}")
        if self.trap is not None:
            tier, shapes = TRAP_RULES[self.trap]
            if self.tier != tier or self.shape not in shapes:
                raise ValueError(f"{self.id}: a {self.trap} item must be {tier} with context {shapes}")
        return self


class Attached(_Strict):
    """An attached file, expanded: what the editor sends as a `ContextItem`."""

    uri: str
    text: str
    language_id: str


class Item(_Strict):
    id: str
    category: Category
    tier: Tier
    shape: Shape
    prompt: str
    reason: str
    context: tuple[Attached, ...]
    trap: Trap | None

    @property
    def strong(self) -> bool:
        return self.tier == "sonnet"


def shape_of(line_counts: Iterable[int]) -> Shape:
    counts = list(line_counts)
    if not counts:
        return "none"
    if len(counts) > 1:
        return "several"
    return "large" if counts[0] >= LARGE_LINES else "small"


def expand(spec: ItemSpec) -> Item:
    attached = tuple(
        Attached(
            uri=f"file:///workspace/{file.path}",
            text=file.text
            if file.text is not None
            else generate(file.language, file.path, file.lines, spec.id, file.focus),
            language_id=file.language,
        )
        for file in spec.context
    )
    return Item(
        id=spec.id,
        category=spec.category,
        tier=spec.tier,
        shape=spec.shape,
        prompt=spec.prompt,
        reason=spec.reason,
        context=attached,
        trap=spec.trap,
    )


def read_specs(paths: Iterable[Path]) -> list[ItemSpec]:
    specs: list[ItemSpec] = []
    for path in sorted(paths):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    specs.append(ItemSpec.model_validate_json(line))
                except ValueError as exc:
                    raise ValueError(f"{path.name}:{number}: {exc}") from exc
    ids = [spec.id for spec in specs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return specs


@cache
def load_suite(data: Path = DATA) -> tuple[Item, ...]:
    """Every item of the suite, expanded, in file then line order."""
    return tuple(expand(spec) for spec in read_specs(data.glob("*.jsonl")))


def is_batch_name(name: str) -> bool:
    """Whether `name` names a fresh batch folder (`fresh`, `fresh2`, `fresh3`, …)."""
    return _BATCH_NAME.fullmatch(name) is not None


def batch_folder(name: str) -> Path:
    if not is_batch_name(name):
        raise ValueError(f"{name!r} is not a fresh batch name (fresh, fresh2, fresh3, …)")
    return BATCHES / name


def batch_number(name: str) -> int:
    """A batch's place in the order they were written: `fresh` is 1, `fresh5` is 5."""
    return int(batch_folder(name).name[len("fresh") :] or 1)


def batch_names() -> list[str]:
    """Every fresh batch present, oldest first (`fresh5` before `fresh10`)."""
    names = [p.name for p in BATCHES.iterdir() if p.is_dir() and is_batch_name(p.name)]
    return sorted(names, key=batch_number)


def unreleased_batches() -> list[str]:
    """The fresh batches present and not released to development, oldest first."""
    return [name for name in batch_names() if name not in RELEASED_BATCHES]


def load_training() -> tuple[Item, ...]:
    """What the escalation model may learn from: `data/` and every released fresh batch (`fresh/` since
    round 3, `fresh2/` since round 4, `fresh3/` since round 5, `fresh4/` since round 6, `fresh5/` since
    round 7, each released once the round it tested was reported). Test batches (`unreleased_batches`) are
    never in it."""
    items = load_suite(DATA)
    for name in RELEASED_BATCHES:
        items += load_suite(batch_folder(name))
    return items
