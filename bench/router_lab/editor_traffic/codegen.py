"""Deterministic, realistic filler for attached files: whole blocks of code or configuration in the file's
language (templates.toml), with names drawn from a small business vocabulary, padded to an exact line count.

`generate(language, path, lines, seed, focus)` returns exactly `lines` lines. The same arguments always give
the same text: the random generator is seeded from a SHA-256 of the arguments, never from `hash()`. A
`focus` snippet (the code the prompt talks about) is placed whole at a block boundary near the middle.
"""

from __future__ import annotations

import hashlib
import random
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates.toml"
ENTITIES = (
    "order", "invoice", "user", "session", "cart", "payment", "shipment", "account", "report", "ticket",
    "product", "customer", "subscription", "device", "job", "event", "message", "review", "coupon", "tenant",
)  # fmt: skip
FIELDS = (
    "status", "amount", "created_at", "owner_id", "total", "region", "priority", "email", "quantity",
    "currency", "score", "label", "updated_at", "retries", "deadline",
)  # fmt: skip
SERVICES = ("api", "worker", "billing", "auth", "search", "gateway", "scheduler", "notifier", "ingest")
# YAML files differ by what they configure, which the path tells; the first matching key wins.
YAML_BY_PATH = (
    ("workflow", "yaml_ci"), ("compose", "yaml_compose"), ("k8s", "yaml_k8s"), ("deploy", "yaml_k8s"),
    ("helm", "yaml_k8s"), ("manifest", "yaml_k8s"),
)  # fmt: skip
YAML_DEFAULT = "yaml_app"


@dataclass(frozen=True)
class Style:
    comment: str
    header: tuple[str, ...]
    blocks: tuple[str, ...]


@cache
def styles() -> dict[str, Style]:
    raw = tomllib.loads(TEMPLATES.read_text(encoding="utf-8"))
    return {
        name: Style(
            comment=str(section["comment"]),
            header=tuple(str(section["header"]).split("\n")) if section["header"] else (),
            blocks=tuple(str(block) for block in section["blocks"]),
        )
        for name, section in raw.items()
    }


def languages() -> frozenset[str]:
    """The VS Code language ids the generator writes."""
    return frozenset({name for name in styles() if not name.startswith("yaml_")} | {"yaml", "json"})


def _camel(word: str) -> str:
    return "".join(part.capitalize() for part in word.split("_"))


def _lower_camel(word: str) -> str:
    camel = _camel(word)
    return camel[0].lower() + camel[1:]


def names(rng: random.Random) -> dict[str, str]:
    """One block's vocabulary: two entities, two fields, a service, a number, a port."""
    entity, other = rng.sample(ENTITIES, 2)
    field, field2 = rng.sample(FIELDS, 2)
    return {
        "e": entity,
        "E": _camel(entity),
        "es": entity + "s",
        "Es": _camel(entity) + "s",
        "o": other,
        "O": _camel(other),
        "f": field,
        "F": _camel(field),
        "fc": _lower_camel(field),
        "g": field2,
        "G": _camel(field2),
        "gc": _lower_camel(field2),
        "F_UP": field.upper(),
        "E_UP": entity.upper(),
        "svc": rng.choice(SERVICES),
        "n": str(rng.choice((3, 5, 10, 20, 30, 50, 100, 250, 500))),
        "port": str(rng.choice((3000, 5432, 6379, 8000, 8080, 8443, 9090))),
        "n2": f"{rng.randint(1, 28):02d}",
        "mm": f"{rng.randint(0, 59):02d}",
        "ss": f"{rng.randint(0, 59):02d}",
        "id": str(rng.randint(1000, 99999)),
    }


def _style(language: str, path: str) -> Style:
    if language == "yaml":
        return styles()[next((name for key, name in YAML_BY_PATH if key in path), YAML_DEFAULT)]
    return styles()[language]


def _seeded(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def _padding(style: Style, rng: random.Random) -> str:
    v = names(rng)
    return rng.choice(
        (
            f"{style.comment} TODO: {v['f']} of {v['es']} is checked again in {v['svc']}",
            f"{style.comment} {v['E']} {v['f']} must stay in sync with {v['svc']}",
            "",
        )
    )


def _blocks(style: Style, rng: random.Random, budget: int) -> list[list[str]]:
    """Whole blocks (each followed by a blank line) until the next one would not fit."""
    chosen: list[list[str]] = []
    used = 0
    while True:
        filled = ([*t.format(**names(rng)).splitlines(), ""] for t in style.blocks)
        fitting = [block for block in filled if used + len(block) <= budget]
        if not fitting:
            return chosen
        block = rng.choice(fitting)
        chosen.append(block)
        used += len(block)


def _json_lines(rng: random.Random, count: int) -> list[str]:
    """A JSON object of exactly `count` lines (≥ 2): nested objects, then one-line keys to pad."""
    body: list[str] = []
    key = 0
    while count - 2 - len(body) >= 6:
        v = names(rng)
        enabled = str(rng.random() < 0.7).lower()
        body += [
            f'  "{v["e"]}_{key}": {{',
            f'    "{v["f"]}": "{v["n"]}",',
            f'    "service": "{v["svc"]}",',
            f'    "port": {v["port"]},',
            f'    "enabled": {enabled}',
            "  },",
        ]
        key += 1
    while len(body) < count - 2:
        v = names(rng)
        body.append(f'  "{v["e"]}_{v["f"]}_{key}": {v["n"]},')
        key += 1
    if body:
        body[-1] = body[-1].rstrip(",")
    return ["{", *body, "}"]


def generate(language: str, path: str, lines: int, seed: str, focus: str | None = None) -> str:
    """`lines` lines of `language` (a VS Code language id), the same for the same arguments."""
    if language not in languages():
        raise ValueError(f"no generator for language {language!r}")
    focus_lines = focus.splitlines() if focus else []
    if lines < 1 or lines < len(focus_lines):
        raise ValueError(f"{path}: {lines} lines cannot hold a {len(focus_lines)}-line focus")
    rng = _seeded(f"{seed}|{path}|{language}|{lines}")
    budget = lines - len(focus_lines)
    if language == "json":
        filler = _json_lines(rng, budget) if budget >= 2 else [""] * budget
        middle = len(filler) // 2
        return "\n".join([*filler[:middle], *focus_lines, *filler[middle:]]) + "\n"
    style = _style(language, path)
    file_names = names(rng)
    header = [line.format(**file_names) for line in style.header][:budget]
    blocks = _blocks(style, rng, budget - len(header))
    tail = [_padding(style, rng) for _ in range(budget - len(header) - sum(map(len, blocks)))]
    middle = len(blocks) // 2
    before = [line for block in blocks[:middle] for line in block]
    after = [line for block in blocks[middle:] for line in block]
    return "\n".join([*header, *before, *focus_lines, *after, *tail]) + "\n"
