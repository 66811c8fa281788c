"""Every fresh batch from the third on (bench/router_lab/editor_traffic/freshN/) is checked the same way:
thirty per category, ids in the batch's own hundred, new to every earlier part word for word and nearly,
mostly with context. Written by someone who has not read the router, a batch is worth only what is new in
it: a prompt close to one the router was fitted on tests nothing."""

from __future__ import annotations

import difflib
import re
from collections import Counter

import pytest

from router_lab.editor_traffic.suite import (
    CATEGORIES,
    DATA,
    Item,
    batch_folder,
    batch_names,
    batch_number,
    load_suite,
)

FIRST_CHECKED = 3  # fresh (round 2) and fresh2 have their own tests in test_editor_traffic.py
# Near duplicates became a rule from fresh4 on; fresh3 holds 24 that were found after it was read.
FIRST_WITHOUT_NEAR_DUPLICATES = 4
NEAR_WORDS = 0.5  # Jaccard of word trigrams: a cheap filter before the character-level ratio
NEAR_RATIO = 0.72  # difflib's ratio from which a prompt reads as a rewording of another


def earlier_parts(name: str) -> list[Item]:
    items = list(load_suite(DATA))
    for other in batch_names():
        if batch_number(other) < batch_number(name):
            items += load_suite(batch_folder(other))
    return items


def trigrams(text: str) -> frozenset[str]:
    words = text.lower().split()
    return frozenset(" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2)))


def near_duplicates(batch: list[Item], earlier: list[Item]) -> list[tuple[str, str]]:
    indexed = [(item, trigrams(item.prompt)) for item in earlier]
    found: list[tuple[str, str]] = []
    for item in batch:
        mine = trigrams(item.prompt)
        for other, theirs in indexed:
            if len(mine & theirs) < NEAR_WORDS * len(mine | theirs):
                continue
            ratio = difflib.SequenceMatcher(None, item.prompt.lower(), other.prompt.lower()).ratio()
            if ratio >= NEAR_RATIO:
                found.append((item.id, other.id))
    return found


CHECKED = [name for name in batch_names() if batch_number(name) >= FIRST_CHECKED]


def test_the_batches_from_the_third_on_are_present() -> None:
    assert CHECKED[:2] == ["fresh3", "fresh4"]


@pytest.mark.parametrize("name", CHECKED)
def test_a_fresh_batch_is_thirty_per_category_in_its_own_hundred(name: str) -> None:
    batch = load_suite(batch_folder(name))
    assert Counter(item.category for item in batch) == dict.fromkeys(CATEGORIES, 30)
    hundred = batch_number(name) + 4  # fresh3 holds -701…-730, fresh4 -801…-830, fresh6 -1001…-1030
    assert all(re.fullmatch(rf"{item.category}-{hundred}\d\d", item.id) for item in batch)
    assert all("\n" not in item.reason for item in batch)
    assert sum(bool(item.context) for item in batch) / len(batch) >= 0.75
    assert 0.15 <= sum(item.strong for item in batch) / len(batch) <= 0.4


@pytest.mark.parametrize("name", CHECKED)
def test_a_fresh_batch_repeats_no_earlier_prompt_or_id(name: str) -> None:
    batch = load_suite(batch_folder(name))
    earlier = earlier_parts(name)
    assert not {item.id for item in batch} & {item.id for item in earlier}
    assert not {item.prompt.lower() for item in batch} & {item.prompt.lower() for item in earlier}


@pytest.mark.parametrize("name", [n for n in CHECKED if batch_number(n) >= FIRST_WITHOUT_NEAR_DUPLICATES])
def test_a_fresh_batch_rewords_no_earlier_prompt(name: str) -> None:
    assert near_duplicates(list(load_suite(batch_folder(name))), earlier_parts(name)) == []


def test_the_near_duplicate_check_finds_a_reworded_prompt() -> None:
    earlier = [item for item in load_suite(DATA) if len(item.prompt.split()) >= 12][:1]
    original = earlier[0]
    words = original.prompt.split()
    reworded = original.model_copy(update={"id": "explain-999", "prompt": " ".join([*words[:-1], "pls"])})
    unrelated = original.model_copy(update={"id": "explain-998", "prompt": "what does this regex match"})
    assert near_duplicates([reworded, unrelated], earlier) == [("explain-999", original.id)]
