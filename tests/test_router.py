"""Auto's router: ask signals, decisions with the committed artifact, preferences, stickiness, plans, shifts
and helpers; the old router's pieces that bench/ still loads."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from router_lab.editor_traffic.suite import load_suite
from router_lab.legacy.difficulty import DifficultyModel, DifficultyWeights, read_weights, save_weights
from router_lab.legacy.text_features import MAX_HEAD_CHARS, MAX_TAIL_CHARS, excerpt, ngrams, numeric_features
from router_lab.metrics import bootstrap_apgr, interval, router_metrics
from switchboard.features.chat.auto import TurnFacts, route_input
from switchboard.routing import (
    AUTO_MODELS,
    PREFERENCES,
    NoRoutableModelError,
    RouteInput,
    Router,
    ask,
    learning,
    next_fallback,
    stronger_model,
)
from switchboard.routing.ask import AskSignals, ask_part, ask_text, read_ask, read_question_ask
from switchboard.routing.context import ContextEntry, summarize_context
from switchboard.routing.escalation import (
    ARTIFACT_NAME,
    FEATURE_NAMES,
    MEANING_ARTIFACT_NAME,
    EscalationModel,
    read_escalation,
)
from switchboard.routing.pricing import switch_saving_usd
from switchboard.routing.router import _packaged_router  # pyright: ignore[reportPrivateUsage]
from switchboard.store import StoredTurn

HAIKU, SONNET_45, SONNET_40, OPUS = (
    "claude-haiku-4.5",
    "claude-sonnet-4.5",
    "claude-sonnet-4.0",
    "claude-opus-4.5",
)
ALL = (HAIKU, SONNET_45, SONNET_40, OPUS)
MODULE = "import json\n\n\ndef load(path):\n    with open(path) as f:\n        return json.load(f)\n" * 30
FILES: list[ContextEntry] = [
    ("file:///repo/app/config.py", MODULE, "python"),
    ("file:///repo/app/db.py", MODULE, "python"),
    ("file:///repo/app/api.py", MODULE, "python"),
]
LOOKUP = "what does HTTP 404 mean?"
REFACTOR = "Refactor these modules to use dependency injection instead of the global config object."
DESIGN = "How should we design the caching layer across these services? Weigh the architecture trade-offs."
BORDERLINE = "why does this endpoint get slow sometimes?"  # a weak signal: under the default threshold
BORDERLINE_CANDIDATES = (
    BORDERLINE,
    "How do I reverse a list in Python?",
    "Add type hints to this function.",
    "What is the difference between a list and a tuple?",
    "Rename the variable x to count.",
    "Explain this code.",
    "why is it slow under load?",
)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load()


# --- what the ask asks ----------------------------------------------------------------------------------


def test_context_summary_counts_files_and_languages_without_reading_everything() -> None:
    huge = [("file:///big.txt", "word " * 200_000, None), *FILES]
    started = time.perf_counter()
    summary = summarize_context(huge)
    assert time.perf_counter() - started < 0.05
    assert summary.files == 4 and summary.has_code and summary.languages == ("python",)
    assert summary.chars == sum(len(t) for _, t, _ in huge)
    assert summarize_context([("file:///notes.md", "Meeting notes.", "markdown")]).has_code is False


@pytest.mark.parametrize("language", ["yaml", "dockerfile", "terraform", "nginx", "toml", "json"])
def test_configuration_counts_as_code(language: str) -> None:
    assert summarize_context([("file:///deploy/x", "key = value\n", language)]).has_code


@pytest.mark.parametrize(
    ("prompt", "signal"),
    [
        ("design the architecture for read scaling, step by step", "design"),
        ("security review of this login handler", "security"),
        ("can this upload endpoint be abused?", "security"),
        ("is this double-checked locking correct?", "concurrency"),
        ("race here? two requests can both pass the balance check", "concurrency"),
        ("rewrite it iterative with an explicit stack", "algorithm"),
        ("refactor error handling across these handlers, status codes must stay identical", "whole_context"),
        ("split this god class, keep the public API the same", "structural"),
        ("the worker hangs only after the cert rotation job ran", "systemic"),
        ("rename calc_total to compute_total", "mechanical"),
    ],
)
def test_ask_signals_read_what_is_asked(prompt: str, signal: str) -> None:
    assert getattr(read_ask(prompt), signal)


@pytest.mark.parametrize(
    "prompt",
    [
        "can this signature check be bypassed by a crafted header?",
        "could someone forge one of these session cookies",
        "are the reset links guessable",
        "we store the api keys in local storage, fine?",
        "is our password hashing good enough",
        "this proxy fetches any url the user gives it",
        "can a user read files outside the upload dir with this handler",
        "the worker does pickle.loads on what the client sends",
        "is this oauth callback safe",
        "what could an attacker do with this upload form",
        "are the grants on this role too broad",
        "can a crafted length make it read past the buffer",
    ],
)
def test_threats_described_without_review_words_are_security(prompt: str) -> None:
    assert read_ask(prompt).security


@pytest.mark.parametrize(
    ("prompt", "bounded"),
    [
        ("design a simple table for storing feature flags", True),
        ("plan for upgrading react 17 to 18 in this app", True),
        ("design the json shape for this webhook payload", True),
        ("design a zero-downtime migration of the orders table across three services", False),
        ("plan the move to a distributed job queue shared by several services", False),
        ("design the offline mode: sync on reconnect, conflicts included", False),
        ("design the db table for audit entries", True),  # one qualifier on the job's noun
        ("quick one: design how a single upload fans out to 2M subscribers", False),  # not the job's size
    ],
)
def test_a_design_ask_is_bounded_only_when_its_scope_is_small(prompt: str, bounded: bool) -> None:
    ask = read_ask(prompt)
    assert ask.design
    assert ask.bounded_design is bounded


def test_a_small_scope_word_alone_is_no_design() -> None:
    ask = read_ask("write a simple function that parses this date")
    assert not ask.design and not ask.bounded_design


@pytest.mark.parametrize(
    "prompt",
    [
        "set the log level to DEBUG for com.acme only",  # a log level, not debugging
        "use the `debug` package instead of console.log here",
        "rename `race` to `heat` in the results struct",  # a field name
        "write a -race test that hammers Counter.Inc",  # a Go flag
        "what does the `architecture: arm64` line mean in this workflow",
        "add an ARCHITECTURE.md section listing these folders",
        "make a quick architecture diagram (mermaid) of these two classes",
        "design question: dataclass or TypedDict for this?",
        "add a `security` logger to this module",
        # Round 5: a setting, a walk-through, a name, a quantity, rows, a cookie flag, a library's feature.
        "turn on object versioning for this gcs bucket",
        "walk me through this Makefile step by step",
        "what is the race column in the results table for",
        "the race detector flagged this map, add a mutex",
        "cap it at 20 concurrent requests",
        "query to list duplicate payments per customer",
        "mark the auth cookie HttpOnly and Secure",
        "how do I skip a field when deserializing with jackson",
        "ruff says this except clause is too broad",
    ],
)
def test_words_used_in_another_sense_are_not_signals(prompt: str) -> None:
    ask = read_ask(prompt)
    assert not (ask.design or ask.security or ask.concurrency or ask.algorithm or ask.structural)


@pytest.mark.parametrize(
    ("prompt", "systemic"),
    [
        ("how do I run this job only when the lockfile changed", False),  # a condition asked for
        ("the page is slow, it's the N+1 on orders, fix it", False),  # the cause is named
        ("how many instances for 5k rps if each does 400", False),  # a sizing question
        ("imports fail, but only after the nightly deploy", True),
        ("the consumer crashes only under load from the batch job", True),
    ],
)
def test_a_symptom_is_systemic_a_condition_or_a_named_cause_is_not(prompt: str, systemic: bool) -> None:
    assert read_ask(prompt).systemic is systemic


def test_dependency_injection_is_a_structural_change_not_a_security_review() -> None:
    for prompt in ("use dependency injection for the db handle here", "add constructor injection to this"):
        assert not read_ask(prompt).security
    assert read_ask("use dependency injection for the db handle here").structural
    assert read_ask("any sql injection risk in this query builder?").security
    assert read_ask("could this be an injection vector?").security


def test_long_prompts_are_read_as_the_ask_only() -> None:
    pasted = "x = compute(total)  # a deadlock in the comment of pasted code;\n" * 500
    assert not read_ask("explain this\n" + pasted).concurrency
    assert read_ask("is there a deadlock here?\n" + pasted).concurrency


# --- decisions ------------------------------------------------------------------------------------------

BIG_MODULE: list[ContextEntry] = [("file:///repo/app/orders.py", "def f(x):\n    return x\n" * 400, "python")]


def test_the_word_start_prefilter_never_hides_a_match() -> None:
    """Each signal family answers as its bare regex does on every suite prompt: the trigger lookup by word
    start (and the `in` search) only skips texts the regex cannot match."""
    families = [value for value in vars(ask).values() if isinstance(value, ask._Family)]  # pyright: ignore[reportPrivateUsage]
    hyphenated = ["should we re-architect the ingest path?", "is this sql-injection safe?", "[emerg] bind()"]
    prompts = [item.prompt for item in load_suite()] + hyphenated
    matched: set[int] = set()
    for prompt in prompts:
        text = ask_text(ask_part(prompt))
        read_once = ask._Text.of(text)  # pyright: ignore[reportPrivateUsage]
        for family in families:
            expected = family.pattern.search(text) is not None
            assert family.search(read_once) is expected, (family.pattern.pattern[:60], prompt[:80])
            assert family.search(text) is expected
            if expected:
                matched.add(id(family))
    assert len(matched) == len(families)  # each family matches somewhere: not a comparison of two Falses


def test_a_question_reads_the_conversation_signals_as_an_editor_request_does() -> None:
    """`read_question_ask` reads the signals the conversation's parts and rules use exactly as `read_ask`
    does, and leaves the others unset."""
    for item in load_suite():
        full = read_ask(item.prompt)
        assert read_question_ask(item.prompt) == AskSignals(
            design=full.design,
            security=full.security,
            concurrency=full.concurrency,
            algorithm=full.algorithm,
            mechanical=full.mechanical,
            ask_words=full.ask_words,
        )


@pytest.mark.parametrize(
    "prompt", ["hi", "thanks!", "what does HTTP 404 mean?", "What is the capital of Australia?"]
)
def test_small_talk_and_short_lookups_go_to_haiku(router: Router, prompt: str) -> None:
    decision = router.decide(RouteInput(prompt=prompt))
    assert decision.model == HAIKU
    assert decision.reason.endswith("→ Claude Haiku 4.5")
    assert decision.probability < decision.threshold


@pytest.mark.parametrize(
    "prompt",
    [
        "rename calc_total to compute_total",
        "docstrings for all the public functions in this file",
        "fix the typo in this comment",
        "convert all the % formatting to f-strings in this file",
        "Write a python function that reverses a linked list",
    ],
)
def test_long_but_easy_asks_stay_on_haiku(router: Router, prompt: str) -> None:
    for context in (BIG_MODULE, FILES):
        decision = router.decide(RouteInput(prompt=prompt, context=context))
        assert decision.model == HAIKU, (prompt, decision.reason)


@pytest.mark.parametrize(
    "prompt",
    [
        "can this upload endpoint be abused?",
        "race here? two requests can both pass the balance check i think",
        "security review of this login handler",
        "design per-tenant rate limiting for the api gateway across 3 regions",
    ],
)
def test_short_but_hard_asks_go_to_sonnet(router: Router, prompt: str) -> None:
    small = [("file:///repo/app/x.py", "def f(x):\n    return x\n" * 20, "python")]
    decision = router.decide(RouteInput(prompt=prompt, context=small))
    assert decision.model == SONNET_45, (prompt, decision.reason)


def test_the_attachments_size_alone_never_escalates(router: Router) -> None:
    one_small = [("file:///a.py", "def f(x):\n    return x\n", "python")]
    six_huge = [(f"file:///m{i}.py", "def f(x):\n    return x\n" * 20_000, "python") for i in range(6)]
    for prompt in ("explain this", "add type hints", "why does this print 0.30000000000000004"):
        small = router.decide(RouteInput(prompt=prompt, context=one_small))
        huge = router.decide(RouteInput(prompt=prompt, context=six_huge))
        assert huge.probability == small.probability and huge.model == HAIKU


def test_the_wording_part_reads_the_asks_words_only(router: Router) -> None:
    lexicon = router.model.lexicon
    assert 50 <= len(lexicon) <= 1_000 and all(term == term.lower() for term in lexicon)
    hard_terms = sorted(lexicon, key=lambda term: lexicon[term], reverse=True)[:20]
    material = "\n".join(f"    {term} = 1;" for term in hard_terms)  # pasted code lines: not the ask
    plain = router.decide(RouteInput(prompt="explain this"))
    pasted = router.decide(RouteInput(prompt="explain this\n" + material))
    attached = router.decide(
        RouteInput(prompt="explain this", context=[("file:///n.md", material, "markdown")])
    )
    assert plain.features.contributions["wording"] == pasted.features.contributions["wording"]
    assert plain.features.contributions["wording"] == attached.features.contributions["wording"]
    assert read_ask("what does `race` mean here").terms == read_ask("what does `debug` mean here").terms
    assert {"deadlock", "can this", "this deadlock"} <= read_ask("can this deadlock?").terms


def test_what_is_asked_of_a_wide_attachment_escalates(router: Router) -> None:
    decision = router.decide(RouteInput(prompt=REFACTOR, context=FILES))
    assert decision.model == SONNET_45
    assert decision.features.contributions["wide_ask"] > 0
    assert router.decide(RouteInput(prompt=REFACTOR)).probability < decision.probability


def test_reasons_name_the_signal_that_decided(router: Router) -> None:
    review = router.decide(RouteInput(prompt="security review of this login handler", context=FILES[:1]))
    assert review.signal in ("security", "security_in_code")
    assert review.reason.startswith("Security review") and review.reason.endswith("→ Claude Sonnet 4.5")
    rename = router.decide(RouteInput(prompt="rename usr to user", context=BIG_MODULE))
    assert rename.reason == "Local or mechanical edit → Claude Haiku 4.5"
    explain = router.decide(RouteInput(prompt="what does this function return", context=BIG_MODULE))
    assert explain.reason == "Large attachment, local ask → Claude Haiku 4.5"
    assert router.decide(RouteInput(prompt="hi")).reason == "Short request → Claude Haiku 4.5"
    weak = router.decide(RouteInput(prompt=BORDERLINE))  # a systemic signal, below the bar
    assert weak.reason == "No signal strong enough to escalate → Claude Haiku 4.5"


def test_conversation_signals_escalate_a_borderline_ask(router: Router) -> None:
    ask = "how does the scheduler pick a worker here?"
    assert router.decide(RouteInput(prompt=ask)).model == HAIKU
    escalated = router.decide(RouteInput(prompt=ask, history_turns=8, sonnet_answers=3))
    assert escalated.model == SONNET_45 and escalated.signal == "escalated_conversation"
    retried = router.decide(RouteInput(prompt=ask, history_turns=2, stronger_retries=1))
    assert retried.model == SONNET_45 and "retry" in retried.reason
    hard = "is this double-checked locking correct?"
    plain = router.decide(RouteInput(prompt=hard))
    thinking = router.decide(RouteInput(prompt=hard, thinking_budget=8_000))
    assert thinking.features.contributions["thinking_on_hard_ask"] > 0
    assert thinking.probability > plain.probability
    assert router.decide(RouteInput(prompt=ask, thinking_budget=8_000)).model == HAIKU  # not a hard ask


def test_preferences_order_the_sonnet_share_on_the_suite(router: Router) -> None:
    items = load_suite()
    shares: list[float] = []
    for preference in PREFERENCES:
        routed = [
            router.decide(
                RouteInput(
                    prompt=item.prompt,
                    context=[(a.uri, a.text, a.language_id) for a in item.context],
                    preference=preference,
                )
            ).model
            != HAIKU
            for item in items
        ]
        shares.append(sum(routed) / len(routed))
    economy, balanced, quality = shares
    assert economy < balanced < quality
    assert balanced <= 0.30  # issue 18's bound on the default's Sonnet share
    assert router.threshold(0.0, "economy") > router.threshold(0.0) > router.threshold(0.0, "quality")


# --- stickiness -----------------------------------------------------------------------------------------


def turn(
    prompt: str,
    last: str,
    *,
    history_tokens: int,
    warm: bool | None = True,
    context: list[ContextEntry] | None = None,
    shift: float = 0.0,
    allowed: tuple[str, ...] = AUTO_MODELS,
) -> RouteInput:
    """A turn of a conversation that `last` answered before."""
    return RouteInput(
        prompt=prompt,
        context=context or [],
        history_turns=6,
        history_tokens=history_tokens,
        last_model=last,
        cache_warm=warm,
        allowed=allowed,
        threshold_shift=shift,
    )


def borderline_shift(router: Router) -> tuple[str, float]:
    """A prompt and a threshold shift that put it inside the hysteresis band, just below the threshold."""
    model = router.model
    default_share = model.share_at(router.threshold(0.0))
    for prompt in BORDERLINE_CANDIDATES:
        share = model.share_at(router.decide(RouteInput(prompt=prompt)).probability)
        shift = share - 0.04 - default_share
        if abs(shift) <= 0.2:
            return prompt, shift
    raise AssertionError("no borderline candidate prompt for this artifact")


def test_a_borderline_turn_does_not_bounce_down(router: Router) -> None:
    prompt, shift = borderline_shift(router)
    fresh = router.decide(RouteInput(prompt=prompt, threshold_shift=shift))
    assert fresh.model == HAIKU  # on its own it is (just) a Haiku request
    for warm in (True, False):
        decision = router.decide(turn(prompt, SONNET_45, history_tokens=3_000, warm=warm, shift=shift))
        assert decision.model == SONNET_45 and decision.kept_for_cache
        assert decision.reason == "Borderline request → staying on Claude Sonnet 4.5"


def test_a_clearly_hard_turn_still_moves_up(router: Router) -> None:
    decision = router.decide(turn(REFACTOR, HAIKU, history_tokens=150_000, context=FILES))
    assert decision.model == SONNET_45 and not decision.kept_for_cache


def test_a_cheap_turn_keeps_a_warm_long_cache(router: Router) -> None:
    decision = router.decide(turn(LOOKUP, SONNET_45, history_tokens=120_000))
    assert decision.model == SONNET_45 and decision.kept_for_cache
    assert decision.reason == "Staying on Claude Sonnet 4.5 to keep its prompt cache warm"
    assert decision.switch_saving_usd is not None and decision.switch_saving_usd < 0


def test_a_cheap_turn_moves_down_when_the_cache_is_cold(router: Router) -> None:
    decision = router.decide(turn(LOOKUP, SONNET_45, history_tokens=120_000, warm=False))
    assert decision.model == HAIKU and not decision.kept_for_cache


def test_a_cheap_turn_moves_down_when_the_saving_is_large(router: Router) -> None:
    decision = router.decide(turn(LOOKUP, SONNET_45, history_tokens=2_000))
    assert decision.model == HAIKU
    assert decision.switch_saving_usd is not None and decision.switch_saving_usd > 0


def test_cache_warmth_follows_the_last_answer_time(router: Router) -> None:
    now = 1_000_000.0

    def answered_ago(seconds: float) -> RouteInput:
        return replace(
            turn(LOOKUP, SONNET_45, history_tokens=120_000, warm=None), last_answer_at=now - seconds, now=now
        )

    recent = router.decide(answered_ago(60))
    stale = router.decide(answered_ago(3600))
    assert recent.features.cache_warm and recent.model == SONNET_45
    assert not stale.features.cache_warm and stale.model == HAIKU


def test_same_tier_sonnets_do_not_switch_while_warm(router: Router) -> None:
    warm = router.decide(turn(REFACTOR, SONNET_40, history_tokens=9_000, context=FILES))
    assert warm.model == SONNET_40
    assert warm.reason == "Staying on Claude Sonnet 4.0 to keep its prompt cache warm"
    cold = router.decide(turn(REFACTOR, SONNET_40, history_tokens=9_000, context=FILES, warm=False))
    assert cold.model == SONNET_45


def test_switch_saving_counts_the_lost_cache() -> None:
    assert switch_saving_usd(SONNET_45, HAIKU, 150_000, 100, cache_warm=True) < 0
    assert switch_saving_usd(SONNET_45, HAIKU, 150_000, 100, cache_warm=False) > 0
    assert switch_saving_usd(SONNET_45, HAIKU, 1_000, 100, cache_warm=True) > 0


# --- plans, Opus, shifts ------------------------------------------------------------------------------------


def test_only_haiku_allowed_routes_hard_prompts_to_haiku(router: Router) -> None:
    decision = router.decide(RouteInput(prompt=REFACTOR, context=FILES, allowed=[HAIKU]))
    assert decision.model == HAIKU and decision.wants_strong
    assert "plan" in decision.reason


def test_without_sonnet_45_hard_prompts_go_to_sonnet_40(router: Router) -> None:
    decision = router.decide(RouteInput(prompt=REFACTOR, context=FILES, allowed=[HAIKU, SONNET_40]))
    assert decision.model == SONNET_40
    assert decision.reason.endswith("→ Claude Sonnet 4.0 (Claude Sonnet 4.5 isn't on your plan)")


def test_never_opus(router: Router) -> None:
    for prompt in ("hi", REFACTOR, "Prove the four colour theorem rigorously, step by step."):
        assert router.decide(RouteInput(prompt=prompt, context=FILES, allowed=ALL)).model != OPUS
    sticky = router.decide(turn(REFACTOR, OPUS, history_tokens=50_000, allowed=ALL))
    assert sticky.model in AUTO_MODELS
    with pytest.raises(NoRoutableModelError):
        router.decide(RouteInput(prompt="hi", allowed=[OPUS]))


def test_threshold_shift_moves_borderline_prompts_up(router: Router) -> None:
    model = router.model
    prompt = BORDERLINE
    plain = router.decide(RouteInput(prompt=prompt))
    assert plain.model == HAIKU
    needed = model.share_at(plain.probability) - model.share_at(router.threshold(0.0))
    assert 0 < needed < learning.MAX_SHIFT
    shifted = router.decide(RouteInput(prompt=prompt, threshold_shift=learning.MAX_SHIFT))
    assert shifted.model == SONNET_45 and shifted.threshold < plain.threshold
    assert router.decide(RouteInput(prompt="hi", threshold_shift=learning.MAX_SHIFT)).model == HAIKU


# --- helpers ----------------------------------------------------------------------------------------------


def test_next_fallback_order() -> None:
    assert next_fallback(SONNET_45, ALL, [SONNET_45]) == SONNET_40
    assert next_fallback(SONNET_45, ALL, [SONNET_45, SONNET_40]) == HAIKU
    assert next_fallback(SONNET_45, ALL, [SONNET_45, SONNET_40, HAIKU]) is None
    assert next_fallback(HAIKU, ALL, [HAIKU]) == SONNET_45
    assert next_fallback(SONNET_45, [HAIKU, SONNET_45], []) == HAIKU
    assert next_fallback(HAIKU, ALL, [HAIKU, SONNET_45, SONNET_40]) is None  # never Opus


def test_stronger_model_is_the_next_one_up_the_plan_allows() -> None:
    assert stronger_model(HAIKU, ALL) == SONNET_45
    assert stronger_model(HAIKU, [HAIKU, SONNET_40]) == SONNET_40
    assert stronger_model(SONNET_45, ALL) == OPUS
    assert stronger_model(SONNET_45, [HAIKU, SONNET_45]) is None
    assert stronger_model(SONNET_40, ALL) == SONNET_45
    assert stronger_model(OPUS, ALL) is None


# --- artifact and metrics -----------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _packaged_router.cache_clear()
    yield
    _packaged_router.cache_clear()


@pytest.mark.usefixtures("no_network")
def test_artifact_loads_from_package_data_without_network() -> None:
    started = time.perf_counter()
    router = Router.load()
    assert time.perf_counter() - started < 0.5  # a few KB of JSON (bench/router_latency.py times it)
    assert Router.load() is router  # cached
    assert set(router.model.weights) == set(FEATURE_NAMES)
    assert set(router.model.thresholds) == set(PREFERENCES)
    assert all(0.0 < t < 1.0 for t in router.model.thresholds.values())
    assert router.model.meta["items"] > 100
    assert router.decide(RouteInput(prompt="hi")).model == HAIKU


def test_escalation_artifact_round_trip_is_exact() -> None:
    model = EscalationModel(
        weights={name: 0.5 for name in FEATURE_NAMES},
        intercept=-1.25,
        thresholds={"economy": 0.7, "balanced": 0.5, "quality": 0.3},
        share_thresholds=[round(1.0 - k / 100, 2) for k in range(101)],
        meta={"items": 3},
        lexicon={"deadlock": 0.75, "rename the": -0.5},
    )
    text = model.to_json()
    again = read_escalation(io.BytesIO(text.encode()))
    assert again == model and again.to_json() == text
    assert again.threshold_at(0.25) == pytest.approx(0.75) and again.share_at(0.75) == pytest.approx(0.25)
    assert again.wording(frozenset({"deadlock", "rename the", "unknown"})) == pytest.approx(0.25)
    broken = text.replace('"design"', '"unknown"', 1)
    with pytest.raises(ValueError, match="does not match"):
        read_escalation(io.BytesIO(broken.encode()))


def test_the_shipped_escalation_model_is_refused_without_its_own_meaning_scores() -> None:
    artifacts = resources.files("switchboard.routing") / "artifacts"
    model = (artifacts / ARTIFACT_NAME).read_bytes()
    scores = (artifacts / MEANING_ARTIFACT_NAME).read_bytes()
    assert read_escalation(io.BytesIO(model), io.BytesIO(scores)).meaning is not None
    with pytest.raises(ValueError, match="needs its meaning scores"):
        read_escalation(io.BytesIO(model))
    other = scores[:-4] + bytes(4)  # the last piece's score changed
    with pytest.raises(ValueError, match="not the ones"):
        read_escalation(io.BytesIO(model), io.BytesIO(other))


# The old router stays loadable for bench/ (side-by-side figures); its pieces keep their tests.


def test_old_router_ngrams_are_lowercased_words_and_bigrams() -> None:
    assert ngrams("Hello, big World! a") == ["hello", "big", "world", "hello big", "big world"]


def test_old_router_reads_long_prompts_as_head_and_tail_only() -> None:
    long = "a" * 100_000 + "TAIL"
    part = excerpt(long)
    assert len(part) == MAX_HEAD_CHARS + MAX_TAIL_CHARS + 1 and part.endswith("TAIL")
    assert excerpt("short") == "short"
    mc = numeric_features("Which is largest?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:")
    assert mc[6] == 1.0 and numeric_features("plain words")[6] == 0.0


def tiny_weights() -> DifficultyWeights:
    return DifficultyWeights(
        vocabulary=["hard", "proof", "hard proof"],
        idf=np.array([1.0, 2.0, 3.0], dtype=np.float32),
        ngram_weights=np.array([0.5, 1.0, 2.0], dtype=np.float32),
        numeric_mean=np.zeros(12),
        numeric_scale=np.ones(12),
        numeric_weights=np.zeros(12),
        intercept=-0.25,
        threshold=0.6,
        meta={"format": 1},
    )


def test_old_router_artifact_round_trip_is_exact_and_deterministic(tmp_path: Path) -> None:
    buffers: list[bytes] = []
    for _ in range(2):
        path = tmp_path / "m.npz"
        save_weights(tiny_weights(), path)
        buffers.append(path.read_bytes())
    assert buffers[0] == buffers[1]
    model = DifficultyModel(read_weights(io.BytesIO(buffers[0])))
    expected_norm = (1.0**2 + 2.0**2 + 3.0**2) ** 0.5
    assert model.text_logit("hard proof") == pytest.approx((0.5 + 2.0 + 6.0) / expected_norm)
    assert model.logit("nothing known") == pytest.approx(-0.25)


def test_paired_bootstrap_of_apgr() -> None:
    rng = np.random.default_rng(1)
    cheap = (rng.random(300) < 0.6).astype(float)
    strong = (rng.random(300) < 0.8).astype(float)
    oracle, noise = strong - cheap, rng.random(300)
    same_a, same_b = bootstrap_apgr([noise, noise.copy()], cheap, strong, resamples=50)
    assert len(same_a) == 50 and np.array_equal(same_a, same_b)  # paired: one resample for every scorer
    best, random = bootstrap_apgr([oracle, noise], cheap, strong, resamples=50)
    assert np.all(best > random)
    spread = interval(0.1, best - random)
    assert spread.estimate == 0.1 and 0 < spread.low <= spread.high


def test_metrics_random_is_half_and_an_oracle_beats_it() -> None:
    cheap = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    strong = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    assert router_metrics(np.zeros(6), cheap, strong).apgr == pytest.approx(0.5)
    oracle = router_metrics(strong - cheap, cheap, strong)
    assert oracle.apgr > 0.9 and oracle.cpt50 <= 0.5


def test_route_input_counts_escalated_answers_retries_and_thinking() -> None:
    def answer(turn_id: str, model: str, retry_of: str | None = None) -> StoredTurn:
        return StoredTurn(
            turn_id,
            "assistant",
            "ok",
            "complete",
            "2026-12-06T06:00:00Z",
            routed_model=model,
            retry_of=retry_of,
        )

    history = [
        StoredTurn("u1", "user", "q", "complete", "2026-12-06T06:00:00Z"),
        answer("a1", HAIKU),
        answer("a2", SONNET_45, retry_of="a1"),
        StoredTurn("u2", "user", "q", "complete", "2026-12-06T06:00:00Z"),
        answer("a3", SONNET_40),
    ]
    facts = TurnFacts(
        prompt="next", context=[], history=history, shift=0.0, thinking_budget=4_000,
        preference="quality",
    )  # fmt: skip
    route = route_input(facts, list(ALL))
    assert (route.sonnet_answers, route.stronger_retries, route.thinking_budget) == (2, 1, 4_000)
    assert route.preference == "quality" and route.history_turns == 5 and route.last_model == SONNET_40


# --- round 5's review: asks that round 5 misrouted ----------------------------------------------------------

PY_120_LINES: list[ContextEntry] = [
    (
        "file:///repo/app/handlers.py",
        "".join(f"def handler_{i}(request):\n    return {i}\n" for i in range(60)),
        "python",
    )
]
NOTHING: list[ContextEntry] = []


def assert_haiku_with_and_without_code(router: Router, prompt: str) -> None:
    for context in (NOTHING, PY_120_LINES):
        decision = router.decide(RouteInput(prompt=prompt, context=context))
        assert decision.model == HAIKU, (prompt, decision.reason)


@pytest.mark.parametrize(
    "prompt",
    [
        "look at the payment handler and rename amt to amount",
        "look at the login handler and fix the indentation",
        "check our auth middleware and add type hints",
        "go over the signup form and make the labels consistent",
        "read past the end of the file and ignore trailing newline",
        "the scope of this PR is too broad, split it",
        "this role is too broad in what it does, split the class",
        "what would people do with this feature? write the product copy",
    ],
)
def test_an_edit_in_a_sensitive_place_is_no_security_review(router: Router, prompt: str) -> None:
    assert not read_ask(prompt).security
    assert_haiku_with_and_without_code(router, prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        # The alternatives narrowed above still catch what they are for.
        "check our login handler for holes",
        "can someone look at our login handler before we ship",
        "go over the payment flow and tell me if it's safe",
        "can a crafted length make it read past the end of the buffer",
        "can this index go out of bounds on a crafted request?",
        "is this IAM policy too broad?",
        "are the grants on this role too broad",
        "what could an attacker do with this endpoint?",
        # The plainest security asks (issue 18 names them as escalation).
        "is this endpoint secure?",
        "is this code secure?",
        "any security holes here?",
        "is this upload handler safe?",
    ],
)
def test_a_security_ask_with_code_attached_goes_to_sonnet(router: Router, prompt: str) -> None:
    assert read_ask(prompt).security
    decision = router.decide(RouteInput(prompt=prompt, context=PY_120_LINES))
    assert decision.model == SONNET_45, (prompt, decision.reason)
    assert decision.reason.startswith("Security review"), decision.reason


@pytest.mark.parametrize(
    "prompt",
    [
        "is it type safe",
        "is this function named secure_compare used anywhere?",
        "the file is read past the end of the header, skip those lines",
        "the permissions section of the README is too long, shorten it",
        "what would people use this config flag for?",
        "look at the login handler and tell me what it returns",
    ],
)
def test_near_misses_of_the_security_alternatives_are_not_security(prompt: str) -> None:
    assert not read_ask(prompt).security, prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "how would you design the permission model for this app",
        "how should we version the events in this app",
    ],
)
def test_a_real_design_for_this_app_is_not_small_and_goes_to_sonnet(router: Router, prompt: str) -> None:
    for context in (NOTHING, PY_120_LINES):
        decision = router.decide(RouteInput(prompt=prompt, context=context))
        assert decision.features.ask.design and not decision.features.ask.bounded_design
        assert decision.model == SONNET_45, (prompt, decision.reason)


@pytest.mark.parametrize(
    ("prompt", "bounded"),
    [
        # A small noun elsewhere in the ask says nothing of the design's size ...
        ("design the retry strategy for the payment request", False),
        ("design a caching layer for the product page", False),
        ("plan the rollout of the new auth for this site", False),
        # ... as the design's own object it does.
        ("design the users table", True),
        ("plan the json response for this endpoint", True),
    ],
)
def test_a_small_noun_bounds_a_design_only_as_its_object(router: Router, prompt: str, bounded: bool) -> None:
    decision = router.decide(RouteInput(prompt=prompt, context=PY_120_LINES))
    assert decision.features.ask.design
    assert decision.features.ask.bounded_design is bounded
    assert ("bounded_design" in decision.features.contributions) is True
    assert (decision.features.contributions["bounded_design"] < 0) is bounded


@pytest.mark.parametrize("follow_up", ["yes", "why?", "go on", "ok do it"])
def test_after_a_stronger_retry_short_follow_ups_stay_on_sonnet(router: Router, follow_up: str) -> None:
    after_retry = router.decide(replace(turn(follow_up, SONNET_45, history_tokens=3_000), stronger_retries=1))
    assert after_retry.model == SONNET_45 and after_retry.signal == "stronger_retry", after_retry.reason
    assert after_retry.reason == "Earlier retry with a stronger model → Claude Sonnet 4.5"
    escalated = router.decide(RouteInput(prompt=follow_up, history_turns=8, sonnet_answers=3))
    assert escalated.model == SONNET_45 and escalated.signal == "escalated_conversation"
    # Without the retry or the escalated conversation the same follow-up is a Haiku turn.
    assert router.decide(RouteInput(prompt=follow_up, history_turns=2)).model == HAIKU


def test_a_mechanical_edit_after_a_stronger_retry_is_left_to_the_model(router: Router) -> None:
    rename = router.decide(RouteInput(prompt="rename x to count", history_turns=2, stronger_retries=1))
    assert rename.features.conversation_rule is None and rename.model == HAIKU, rename.reason
    # Mid-conversation on a warm Sonnet cache, the usual stickiness still applies, not the rule.
    warm = router.decide(
        replace(turn("rename x to count", SONNET_45, history_tokens=50_000), stronger_retries=1)
    )
    assert warm.signal != "stronger_retry"


# --- round 6: threats and hazards in the words people use for them (kinds of phrasing fresh4 missed) --------


@pytest.mark.parametrize(
    "prompt",
    [
        # Who controls an input that reaches a file, a query or a fetch.
        "customers can upload their own svg logos and we render them on the invoice page",
        "the report endpoint takes the column and order values from the query string",
        # Code a customer runs on our side.
        "we let partners run their own scripts in this sandbox, check it",
        "this worker executes tenant-supplied transforms",
        # Authorisation across tenants, named by letter or by "another".
        "could a teacher at school A see grades of a school B student through this api",
        "can a manager edit another team's shifts with these mutations",
        # A review by its object or angle, no "security" noun.
        "please review our session handling in these middlewares",
        "is this bucket setup fine from a security perspective",
        "here are the rls policies on the invoices table",
        "our saml oauth callback handler, anything off?",
        # Signed links, secrets kept in a client, updates over plain http.
        "these signed urls are built by the helper below, they should expire after a day",
        "we keep the api key in local storage so the spa can call the backend",
        "the desktop app fetches its updates over http and runs the installer",
        "avatars are uploaded and served from the same origin as the app",
    ],
)
def test_a_threat_in_plain_words_with_code_attached_goes_to_sonnet(router: Router, prompt: str) -> None:
    assert read_ask(prompt).security, prompt
    decision = router.decide(RouteInput(prompt=prompt, context=PY_120_LINES))
    assert decision.model == SONNET_45, (prompt, decision.reason)


@pytest.mark.parametrize(
    "prompt",
    [
        "the user can set a theme colour in settings, add a dark option",
        "read the page size value from the config file",
        "write a user-facing error message for this form",
        "rename the customer a and customer b fixtures to alice and bob",
        "review the login page copy for typos",
        "add a section on security to the README",
        "add a sign up link to the navbar",
        "store the user's locale in local storage",
        "serve the static files from the cdn",
        "run their own tests with npm test, document it",
        # Round 5's reviewer's precision cases stay Haiku.
        "look at the payment handler and rename amt to amount",
        "rename the session_token variable in the oauth module to token",
    ],
)
def test_near_misses_of_the_plain_threat_phrasings_stay_on_haiku(router: Router, prompt: str) -> None:
    assert not read_ask(prompt).security, prompt
    assert_haiku_with_and_without_code(router, prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        # Two actors at once on one thing.
        "occasionally two customers buy the last ticket",
        "both replicas sometimes claim the same shard lease",
        "payment and cancel events arrive at the same moment and the order ends up paid and cancelled",
        # Readers while a writer changes the thing; a flag shared with an interrupt; a freed value read.
        "the cache is swapped on reload and handlers keep using it while it is rebuilding",
        "the uart interrupt and the main loop share this ring buffer",
        "crash dump shows a use after free on the config string, the reloader and the readers are attached",
        # Check then act, ordering of writes, lost updates without the keyword.
        "we check if the username exists and then insert the row",
        "the ack goes out before the db write commits",
        "two saves from different tabs sometimes overwrite each other, handler attached",
        "the ui freezes occasionally when sync runs",
        "after a partition we had split brain: fencing tokens?",
    ],
)
def test_a_concurrency_hazard_without_the_keyword_goes_to_sonnet(router: Router, prompt: str) -> None:
    assert read_ask(prompt).concurrency, prompt
    decision = router.decide(RouteInput(prompt=prompt, context=PY_120_LINES))
    assert decision.model == SONNET_45, (prompt, decision.reason)


def test_a_bare_memory_ordering_question_is_concurrency_but_left_to_the_model(router: Router) -> None:
    """Known limit (docs/router.md, round 6): the concurrency signal alone, short and with code attached,
    lands near p 0.5, under the balanced threshold; the signal itself is recognised."""
    prompt = "does the fence placement in this seqlock hold up on arm?"
    assert read_ask(prompt).concurrency
    assert 0.3 < router.decide(RouteInput(prompt=prompt, context=PY_120_LINES)).probability < 0.8


@pytest.mark.parametrize(
    "prompt",
    [
        "both tests get skipped on windows, why",
        "show the two charts at the same time on the dashboard",
        "read the file while the progress bar updates",
        "the threads page should share the sidebar component",
        "check if the file exists and then print its size",
        "freeze the dependency versions in requirements.txt",
        "share this HashMap between tokio tasks, Arc<Mutex<>>?",
        # Round 5's reviewer's ordinary uses of "safe", "race", "concurrent".
        "add a race field to the character sheet",
        "limit to 10 concurrent requests",
    ],
)
def test_near_misses_of_the_plain_concurrency_phrasings_stay_on_haiku(router: Router, prompt: str) -> None:
    assert not read_ask(prompt).concurrency, prompt
    assert_haiku_with_and_without_code(router, prompt)


@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/router.md, round 7): the meaning part escalates this near miss; a fix makes"
    " this an unexpected pass",
)
def test_a_merge_of_duplicate_users_is_no_race_and_stays_on_haiku(router: Router) -> None:
    """Round 6's near miss "merge two users with the same email" fires no signal, but round 7's meaning
    part reads it like the data-integrity asks that need Sonnet and escalates it (Haiku until round 7)."""
    prompt = "merge two users with the same email into one account"
    assert not read_ask(prompt).concurrency
    decision = router.decide(RouteInput(prompt=prompt))
    assert decision.model == HAIKU, (decision.signal, decision.reason)
