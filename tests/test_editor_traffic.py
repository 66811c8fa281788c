"""The editor-traffic suite (bench/router_lab/editor_traffic): valid, covering what issue 18 asks for,
expanded the same way every time; and the figures bench/router_editor_traffic.py prints from it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from router_lab.editor_traffic.codegen import generate, languages
from router_lab.editor_traffic.metrics import (
    agreement_by,
    averaged,
    bootstrap_intervals,
    figures,
    random_choices,
    top_share,
)
from router_lab.editor_traffic.suite import (
    CATEGORIES,
    FRESH,
    FRESH2,
    FRESH3,
    RELEASED_BATCHES,
    SHAPES,
    TIERS,
    TRAPS,
    Item,
    batch_folder,
    expand,
    load_suite,
    load_training,
    read_specs,
    shape_of,
    unreleased_batches,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "router_lab" / "editor_traffic" / "data"


@pytest.fixture(scope="module")
def suite() -> tuple[Item, ...]:
    return load_suite()


def suite_digest(items: tuple[Item, ...]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.model_dump_json().encode())
    return digest.hexdigest()


# --- the fresh held-out batch ---


def test_the_fresh_batch_is_valid_disjoint_and_ten_per_category(suite: tuple[Item, ...]) -> None:
    fresh = load_suite(FRESH)
    assert Counter(item.category for item in fresh) == dict.fromkeys(CATEGORIES, 10)
    assert not {item.id for item in fresh} & {item.id for item in suite}
    # Three short asks were written the same way in both (docs/router.md says which); they agree on the tier.
    tiers = {item.prompt: item.tier for item in suite}
    shared = [item for item in fresh if item.prompt in tiers]
    assert len(shared) <= 3 and all(tiers[item.prompt] == item.tier for item in shared)
    assert all(item.id.startswith(item.category + "-5") for item in fresh)
    assert 0.2 <= sum(item.strong for item in fresh) / len(fresh) <= 0.35


def test_the_second_fresh_batch_is_valid_disjoint_and_thirty_per_category(suite: tuple[Item, ...]) -> None:
    batch = load_suite(FRESH2)
    assert Counter(item.category for item in batch) == dict.fromkeys(CATEGORIES, 30)
    assert all(item.id.startswith(item.category + "-6") for item in batch)
    earlier = [*suite, *load_suite(FRESH)]
    assert not {item.id for item in batch} & {item.id for item in earlier}
    assert not {item.prompt.lower() for item in batch} & {item.prompt.lower() for item in earlier}
    assert 0.2 <= sum(item.strong for item in batch) / len(batch) <= 0.35
    assert sum(bool(item.context) for item in batch) / len(batch) >= 0.75
    assert Counter(item.trap for item in batch).keys() >= set(TRAPS)


def test_the_third_fresh_batch_is_valid_disjoint_and_thirty_per_category(suite: tuple[Item, ...]) -> None:
    batch = load_suite(FRESH3)
    assert Counter(item.category for item in batch) == dict.fromkeys(CATEGORIES, 30)
    assert all(item.id.startswith(item.category + "-7") for item in batch)
    earlier = [*suite, *load_suite(FRESH), *load_suite(FRESH2)]
    assert not {item.id for item in batch} & {item.id for item in earlier}
    assert not {item.prompt.lower() for item in batch} & {item.prompt.lower() for item in earlier}
    assert 0.2 <= sum(item.strong for item in batch) / len(batch) <= 0.35
    assert sum(bool(item.context) for item in batch) / len(batch) >= 0.75


def test_the_router_is_fitted_on_data_and_the_released_batches_never_a_test_batch() -> None:
    from router_lab.escalation import halves  # bench/ is on pytest's pythonpath
    from switchboard.routing import Router

    training = load_training()
    assert RELEASED_BATCHES == ("fresh", "fresh2", "fresh3", "fresh4", "fresh5")
    released = [load_suite(batch_folder(name)) for name in RELEASED_BATCHES]
    assert len(training) == len(load_suite()) + sum(len(batch) for batch in released)
    for name in unreleased_batches():
        assert not {item.id for item in training} & {item.id for item in load_suite(batch_folder(name))}
    development, validation = halves(list(training))
    # Each released batch is split by the same id hash as the rest: both halves hold some of it.
    for name in RELEASED_BATCHES:
        ids = {item.id for item in load_suite(batch_folder(name))}
        assert {item.id for item in development} & ids and {item.id for item in validation} & ids
    meta = Router.load().model.meta
    assert (meta["items"], meta["validation_items"]) == (len(development), len(validation))


def test_a_new_fresh_batch_is_a_test_part_with_aggregates_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `freshN/` folder that is not released (the next batch, written without reading the router) is read
    through `--part freshN`, aggregates only; a copy of fresh2 renamed stands in for it, outside the repo."""
    import router_editor_traffic  # bench/ is on pytest's pythonpath
    from router_lab.editor_traffic import suite as suite_module

    shutil.copytree(FRESH2, tmp_path / "fresh8")
    (tmp_path / "fresh4").mkdir()  # released: never a test part, wherever its folder is
    (tmp_path / "fresh11").mkdir()  # not a batch with items; only its name and order matter here
    monkeypatch.setattr(suite_module, "BATCHES", tmp_path)
    assert unreleased_batches() == ["fresh8", "fresh11"]
    with pytest.raises(SystemExit):
        router_editor_traffic.main(["--part", "fresh8", "--misrouted"])
    with pytest.raises(SystemExit):
        router_editor_traffic.main(["--part", "fresh9"])  # no such folder: a clear usage error
    capsys.readouterr()
    figures_of_test = router_editor_traffic.main(["--part", "fresh8"])
    printed = capsys.readouterr().out
    assert "Part: fresh8" in printed and "95% bootstrap intervals" in printed
    assert "Route reasons" not in printed and "→ Claude" not in printed
    assert not any(item.prompt[:40] in printed for item in load_suite(FRESH2))
    assert figures_of_test["labels"]["sonnet_share"] == pytest.approx(
        sum(item.strong for item in load_suite(FRESH2)) / len(load_suite(FRESH2))
    )


# --- the suite ---


def test_the_suite_has_at_least_300_items_with_unique_ids(suite: tuple[Item, ...]) -> None:
    ids = [item.id for item in suite]
    assert len(ids) >= 300
    assert len(set(ids)) == len(ids)


def test_every_item_is_labelled_from_the_allowed_sets(suite: tuple[Item, ...]) -> None:
    for item in suite:
        assert item.tier in TIERS and item.category in CATEGORIES and item.shape in SHAPES, item.id
        assert item.trap is None or item.trap in TRAPS, item.id
        assert item.id.startswith(item.category + "-"), item.id
        assert len(item.reason) >= 10 and "\n" not in item.reason, item.id


def test_each_shape_label_matches_the_expanded_context(suite: tuple[Item, ...]) -> None:
    specs = {spec.id: spec for spec in read_specs(DATA.glob("*.jsonl"))}
    for item in suite:
        counts = [len(attached.text.splitlines()) for attached in item.context]
        assert counts == [spec.lines for spec in specs[item.id].context], item.id
        assert shape_of(counts) == item.shape, item.id
        for attached, spec in zip(item.context, specs[item.id].context, strict=True):
            if spec.focus:
                assert spec.focus in attached.text, item.id


def test_the_suite_covers_categories_shapes_traps_and_languages(suite: tuple[Item, ...]) -> None:
    categories = Counter(item.category for item in suite)
    assert all(categories[c] >= 10 for c in CATEGORIES), categories
    shapes = Counter(item.shape for item in suite)
    assert all(shapes[s] >= 25 for s in SHAPES), shapes
    assert sum(item.shape != "none" for item in suite) / len(suite) >= 0.75  # most carry context
    traps = Counter(item.trap for item in suite)
    assert all(traps[t] >= 10 for t in TRAPS), traps
    sizes = [len(a.text.splitlines()) for item in suite for a in item.context]
    assert min(sizes) <= 5 and max(sizes) == 500
    code = {"python", "typescript", "go", "rust", "java", "c", "cpp", "sql", "shellscript"}
    config = {"yaml", "dockerfile", "terraform", "json", "toml", "nginx"}
    used = {a.language_id for item in suite for a in item.context}
    assert code | config <= used, (code | config) - used


def test_about_a_quarter_to_thirty_percent_is_labelled_sonnet(suite: tuple[Item, ...]) -> None:
    share = sum(item.strong for item in suite) / len(suite)
    assert 0.25 <= share <= 0.30, share
    # The tricky cases cut both ways: traps that look hard are easy, and the reverse.
    for item in suite:
        if item.trap in ("long_easy", "keyword_easy"):
            assert item.tier == "haiku", item.id
        if item.trap == "short_hard":
            assert item.tier == "sonnet" and item.shape in ("none", "small"), item.id


def write_jsonl(path: Path, *items: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


GOOD: dict[str, object] = {
    "id": "rename-001",
    "category": "rename",
    "tier": "haiku",
    "shape": "large",
    "prompt": "rename x to y",
    "reason": "a mechanical rename",
    "context": [{"path": "a.py", "language": "python", "lines": 250}],
    "trap": "long_easy",
}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"shape": "small"}, "labelled shape 'small', but the context is 'large'"),
        ({"tier": "gpt"}, "tier"),
        ({"category": "chitchat"}, "category"),
        ({"trap": "short_hard", "tier": "sonnet"}, "short_hard item must be sonnet"),
        ({"context": [{"path": "a.py", "language": "python", "lines": 2, "text": "x = 1\n"}]}, "not 2"),
        ({"context": [{"path": "a.cob", "language": "cobol", "lines": 250}]}, "no generator"),
        ({"context": [{"path": "a.py", "language": "python", "lines": 501}]}, "less than or equal to 500"),
        ({"surprise": True}, "Extra inputs"),
    ],
)
def test_a_bad_item_is_refused_with_its_line(
    tmp_path: Path, change: dict[str, object], complaint: str
) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", GOOD, {**GOOD, "id": "rename-002", **change})
    with pytest.raises(ValueError, match=r"x\.jsonl:2:") as raised:
        read_specs([path])
    assert complaint in str(raised.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", GOOD, GOOD)
    with pytest.raises(ValueError, match="duplicate ids"):
        read_specs([path])


# --- the generator and the loader are deterministic ---


@pytest.mark.parametrize("language", sorted(languages()))
def test_generated_files_have_exactly_the_asked_lines_and_keep_the_focus(language: str) -> None:
    focus = "FOCUS_START = 1\nFOCUS_END = 2"
    for lines in (1, 2, 7, 40, 199, 200, 500):
        text = generate(language, f"deploy/k8s/x.{language}", lines, "seed", focus if lines >= 2 else None)
        assert len(text.splitlines()) == lines
        if lines >= 2:
            assert focus in text


def test_generation_depends_on_its_arguments_only() -> None:
    one = generate("go", "internal/a.go", 120, "item-001")
    assert one == generate("go", "internal/a.go", 120, "item-001")
    assert one != generate("go", "internal/a.go", 120, "item-002")
    assert one != generate("go", "internal/b.go", 120, "item-001")
    with pytest.raises(ValueError, match="cannot hold"):
        generate("go", "a.go", 1, "s", "two\nlines")


def test_the_suite_expands_to_the_same_bytes_in_a_fresh_process(suite: tuple[Item, ...]) -> None:
    # A different hash seed in the child: nothing may depend on Python's per-process str hashing.
    script = (
        "import hashlib\nfrom router_lab.editor_traffic.suite import load_suite\nd = hashlib.sha256()\n"
        "for i in load_suite():\n    d.update(i.model_dump_json().encode())\nprint(d.hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT / "bench")}
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert child.stdout.strip() == suite_digest(suite)
    assert suite_digest(tuple(expand(spec) for spec in read_specs(DATA.glob("*.jsonl")))) == suite_digest(
        suite
    )


# --- the bench's figures ---


def test_figures_on_a_hand_made_routing() -> None:
    hard = [True, True, False, False, False]
    strong = [True, False, True, False, False]
    haiku = [1.0, 1.0, 1.0, 1.0, 2.0]
    sonnet = [3.0, 3.0, 3.0, 3.0, 6.0]
    f = figures(hard, strong, haiku, sonnet)
    assert f.n == 5
    assert f.sonnet_share == pytest.approx(2 / 5)
    assert f.cost_ratio == pytest.approx((3 + 1 + 3 + 1 + 2) / 18)
    assert f.easy_escalated == pytest.approx(1 / 3)
    assert f.hard_caught == pytest.approx(1 / 2)
    assert f.agreement == pytest.approx(3 / 5)
    assert math.isnan(figures([False], [False], [1.0], [3.0]).hard_caught)  # no hard items: no rate
    with pytest.raises(ValueError, match="one entry per item"):
        figures(hard, strong[:4], haiku, sonnet)


def test_agreement_by_group() -> None:
    groups = ["a", "a", "b", "b", "b"]
    hard = [True, False, True, True, False]
    strong = [True, True, False, True, False]
    assert agreement_by(groups, hard, strong) == {"a": 0.5, "b": pytest.approx(2 / 3)}


def test_top_share_sends_the_highest_scores_and_breaks_ties_by_order() -> None:
    assert top_share([1.0, 5.0, 3.0, 5.0], 0.5) == [False, True, False, True]
    assert top_share([2.0, 2.0, 2.0, 1.0], 0.25) == [True, False, False, False]
    assert top_share([1.0, 2.0, 3.0], 0.0) == [False, False, False]


def test_random_routing_keeps_the_share_and_averages_to_it() -> None:
    choices = random_choices(200, 0.3, seed=7)
    assert sum(choices) == 60 and choices == random_choices(200, 0.3, seed=7)
    assert choices != random_choices(200, 0.3, seed=8)
    hard = [i % 4 == 0 for i in range(200)]
    costs = [1.0] * 200
    mean = averaged(
        300,
        lambda seed: random_choices(200, 0.3, seed),
        lambda s: {"caught": figures(hard, s, costs, costs).hard_caught},
    )
    assert mean["caught"] == pytest.approx(0.3, abs=0.02)  # random catches hard items at its own share


def test_the_bench_routes_an_item_as_the_router_does_by_hand(suite: tuple[Item, ...]) -> None:
    from router_editor_traffic import PLAN_MODELS, Suite, decide  # bench/ is on pytest's pythonpath
    from switchboard.routing import RouteInput, Router

    item = next(i for i in suite if i.shape == "several")
    router = Router.load()
    by_hand = router.decide(
        RouteInput(
            prompt=item.prompt,
            context=[(a.uri, a.text, a.language_id) for a in item.context],
            allowed=PLAN_MODELS,
        )
    )
    through_bench = decide(router, item)
    assert (through_bench.model, through_bench.probability) == (by_hand.model, by_hand.probability)
    priced = Suite([item])
    assert priced.sonnet_cost[0] == pytest.approx(
        3 * priced.haiku_cost[0]
    )  # Haiku 4.5 is a third of Sonnet 4.5


def test_a_released_batch_is_a_development_part_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    from router_editor_traffic import main  # bench/ is on pytest's pythonpath

    figures_of_part = main(["--part", "fresh2"])
    printed = capsys.readouterr().out
    assert "Route reasons" in printed
    share = sum(item.strong for item in load_suite(FRESH2)) / len(load_suite(FRESH2))
    assert figures_of_part["labels"]["sonnet_share"] == pytest.approx(share)


def test_bootstrap_intervals_bracket_the_figure_and_narrow_with_more_items() -> None:
    hard = [True, False, False, True, False] * 6
    strong = [True, False, True, False, False] * 6
    small = bootstrap_intervals(hard, strong)
    low, high = small["agreement"]
    assert low < 0.6 < high  # 18 of 30 agree
    assert small["hard_caught"][0] < 0.5 < small["hard_caught"][1]
    wide = high - low
    low, high = bootstrap_intervals(hard * 10, strong * 10)["agreement"]
    assert low < 0.6 < high and high - low < wide / 2
    no_hard = bootstrap_intervals([False] * 5, [False] * 5)["hard_caught"]
    assert all(math.isnan(bound) for bound in no_hard)  # no hard item to catch: no made-up figure
