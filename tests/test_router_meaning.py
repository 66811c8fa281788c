"""The escalation model's meaning part (round 7): the ask's mean static embedding times a learned direction,
shipped collapsed as one score per word piece (`escalation_meaning.npy`), read through the real artifacts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from importlib import resources

import pytest

from switchboard.routing import RouteInput, Router
from switchboard.routing.ask import read_ask
from switchboard.routing.embedding import WordPieces
from switchboard.routing.escalation import MEANING, MEANING_ARTIFACT_NAME, MEANING_PRIOR_PIECES
from switchboard.routing.policy import HAIKU, SONNET_45

CODE = [
    (
        "file:///w/store.py",
        "def load(row_id):\n    return cache.get(row_id) or db.get(row_id)\n" * 60,
        "python",
    )
]
HARD_REASONING = ("design", "security", "concurrency", "algorithm", "systemic", "structural", "care")


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load()


def test_the_shipped_scores_are_one_per_word_piece_and_match_the_model(router: Router) -> None:
    meaning = router.model.meaning
    assert meaning is not None and meaning.k == 1
    assert meaning.pieces is WordPieces.packaged() and len(meaning.columns[0]) == len(meaning.pieces)
    shipped = resources.files("switchboard.routing").joinpath("artifacts", MEANING_ARTIFACT_NAME).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == router.model.meta["meaning_sha256"]
    assert router.model.meta["meaning_sd"] > 0


def test_the_meaning_part_is_the_mean_piece_score_shrunk_to_the_centroid(router: Router) -> None:
    model = router.model
    assert model.meaning is not None
    text = read_ask("can two workers pick up the same job?").text
    ids = model.meaning.pieces.ids(text)
    scores = [model.meaning.score(i) for i in ids]
    expected = (sum(scores) - len(ids) * model.meaning_prior) / (len(ids) + MEANING_PRIOR_PIECES)
    assert model.meaning_score(text) == pytest.approx(expected, abs=1e-9)
    assert model.meaning_score("") == 0.0  # no pieces: the centroid itself, which the intercept carries


UNSEEN = "can the cache serve stale data after the writer updates the row while readers are mid-request?"


def test_an_ask_no_trigger_lists_escalates_on_its_meaning(router: Router) -> None:
    """A read-during-write hazard in words no concurrency or systemic pattern lists: the signals stay silent,
    the meaning part carries it over the threshold, and the same model without that part keeps it on Haiku."""
    ask = read_ask(UNSEEN)
    assert not any(getattr(ask, name) for name in HARD_REASONING)
    decision = router.decide(RouteInput(prompt=UNSEEN, context=CODE))
    assert decision.model == SONNET_45 and decision.signal == MEANING, decision.reason
    assert decision.reason == "Reads like requests that need deeper reasoning → Claude Sonnet 4.5"
    without = Router(replace(router.model, meaning=None), router.questions)
    assert without.decide(RouteInput(prompt=UNSEEN, context=CODE)).model == HAIKU


@pytest.mark.parametrize(
    "prompt",
    [
        # The same words (cache, stale, writer, row, readers, updates) in local, ordinary asks.
        "the cache shows the old name after the user updates the profile page, add a refresh button",
        "serve the cached logo from the cdn instead",
        "update the row's timestamp when the reader opens it",
        "rename the writer class to ReportWriter",
    ],
)
def test_near_misses_sharing_its_words_stay_on_haiku(router: Router, prompt: str) -> None:
    decision = router.decide(RouteInput(prompt=prompt, context=CODE))
    assert decision.model == HAIKU, (prompt, decision.reason, decision.probability)


def test_the_meaning_part_reads_the_ask_never_the_attachment(router: Router) -> None:
    """What is attached (its size, its words) does not move the meaning part: only the ask is embedded."""
    small = router.decide(RouteInput(prompt=UNSEEN, context=CODE[:1]))
    scary = [
        ("file:///w/notes.md", "race condition deadlock attacker exploit vulnerability\n" * 2_000, "markdown")
    ]
    large = router.decide(RouteInput(prompt=UNSEEN, context=scary))
    assert small.features.contributions[MEANING] == large.features.contributions[MEANING]
    hello = router.decide(RouteInput(prompt="hi", context=scary))
    assert (
        hello.features.contributions[MEANING]
        == router.decide(RouteInput(prompt="hi")).features.contributions[MEANING]
    )
