"""Self-contained questions (`switchboard.routing.questions`): which prompts are questions, how the committed
artifact ranks them, how the router uses its one part of the logit, the trainer's decontamination, and its
embedding candidates (fitted within each set, scored leave-one-set-out)."""

from __future__ import annotations

import io
import json
from importlib import resources

import numpy as np
import pytest

from router_lab.embedding import StaticEmbedding
from router_lab.question_data import EvaluationIndex, TrainingItem, decontaminate, stem_of
from router_lab.questions import (
    EmbeddingSetting,
    KindData,
    computation_score,
    embed,
    fit_embedding,
    kind_data,
    leave_one_task_out,
    question_text,
    subset,
)
from switchboard.routing import RouteInput, Router
from switchboard.routing.embedding import WordPieces
from switchboard.routing.escalation import ARTIFACT_NAME as ESCALATION_ARTIFACT
from switchboard.routing.questions import (
    ARTIFACT_NAME,
    QUESTION,
    ParsedQuestion,
    parse_question,
    question_contributions,
    read_question_model,
)

EXAM_ITEM = (
    "Which of the following best explains why the sky appears blue?\n"
    "A. Reflection from the oceans\nB. Rayleigh scattering of sunlight\nC. Absorption of red light by ozone\n"
    "D. Emission from nitrogen\nAnswer:"
)
ONE_STEP = "Tom has 5 apples and buys 3 more. How many apples does he have now?"
TWO_STEP = (
    "Sam reads 20 pages a day for 5 days and then 35 pages a day for 3 days. How many pages does he read?"
)
MULTI_STEP = (
    "A bakery sells muffins for $2.50 each and cookies for $0.75 each. On Monday it sold 120 muffins "
    "and three times as many cookies. On Tuesday it sold 15% fewer muffins than on Monday and half as "
    "many cookies as on Monday. After paying $85 for ingredients and 40% of the remaining revenue in "
    "wages, how much money did the bakery keep over the two days?"
)
EDITOR_ASKS = (
    "how many replicas do we need for 2k rps if one pod does ~300?",
    "Why does `parse_config` return None when 2 of the 3 keys are set?",
    "fix the off-by-one in utils.py: the loop runs 10 times instead of 9",
    "what does this function return for n = 0 and n = 1? def f(n): return n * 2",
)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load()


def test_exam_items_and_word_problems_are_recognised() -> None:
    exam = parse_question(EXAM_ITEM)
    assert exam is not None and exam.kind == "multiple_choice"
    assert exam.stem.startswith("Which of the following") and len(exam.options) == 4
    assert exam.options[1] == "Rayleigh scattering of sunlight"
    for problem in (ONE_STEP, MULTI_STEP):
        parsed = parse_question(problem)
        assert parsed is not None and parsed.kind == "word_problem"


@pytest.mark.parametrize("prompt", EDITOR_ASKS)
def test_code_and_engineering_asks_are_not_questions(prompt: str) -> None:
    assert parse_question(prompt) is None


def test_a_multi_step_word_problem_ranks_above_a_one_step_one(router: Router) -> None:
    assert router.questions is not None
    one, many = router.questions.read(ONE_STEP), router.questions.read(MULTI_STEP)
    assert one is not None and many is not None
    assert many.z > one.z + 1.0
    assert many.logit > one.logit
    assert (
        router.decide(RouteInput(prompt=MULTI_STEP)).probability
        > router.decide(RouteInput(prompt=ONE_STEP)).probability
    )


def test_a_one_step_problem_stays_on_haiku_at_every_preference(router: Router) -> None:
    for preference in ("economy", "balanced", "quality"):
        decision = router.decide(RouteInput(prompt=ONE_STEP, preference=preference))
        assert decision.model == "claude-haiku-4.5", preference
        assert decision.signal == QUESTION
        assert "Question" in decision.reason


def test_the_question_part_replaces_the_asks_own_parts(router: Router) -> None:
    features = router.features(RouteInput(prompt=MULTI_STEP))
    assert set(features.contributions) == {QUESTION, "thinking_on_hard_ask"}
    assert router.questions is not None
    signal = router.questions.read(MULTI_STEP)
    assert signal is not None
    assert features.contributions[QUESTION] == pytest.approx(signal.logit)


def test_an_attachment_or_a_stronger_retry_still_counts(router: Router) -> None:
    with_file = router.features(
        RouteInput(prompt=ONE_STEP, context=[("file:///a.txt", "notes\n", "plaintext")])
    )
    assert QUESTION not in with_file.contributions
    # A retry with a stronger model keeps the conversation on Sonnet, a question included: it is a rule of
    # the conversation, outside the question's logit.
    for prompt in (ONE_STEP, TWO_STEP):
        plain = router.decide(RouteInput(prompt=prompt))
        retried = router.decide(RouteInput(prompt=prompt, stronger_retries=1))
        assert plain.model == "claude-haiku-4.5", plain.reason
        assert retried.model == "claude-sonnet-4.5" and retried.signal == "stronger_retry"
        assert retried.probability == plain.probability


def test_not_a_question_leaves_the_contributions_alone() -> None:
    parts = {"design": 1.2, "log_ask_words": 0.4}
    assert question_contributions(parts, None) is parts


def test_artifact_matches_the_escalation_artifact_it_was_calibrated_on() -> None:
    """Refitting the escalation model moves its intercept and thresholds: re-run
    `cd bench && ../.venv/bin/python -m router_lab.questions` so the question part keeps its shares."""
    artifacts = resources.files("switchboard.routing").joinpath("artifacts")
    escalation = json.loads(artifacts.joinpath(ESCALATION_ARTIFACT).read_text(encoding="utf-8"))
    raw = artifacts.joinpath(ARTIFACT_NAME).read_bytes()
    model = read_question_model(io.BytesIO(raw))
    assert model.meta["escalation_intercept"] == escalation["intercept"]
    assert model.meta["escalation_thresholds"] == escalation["thresholds"]
    assert set(model.kinds) == {"multiple_choice", "word_problem"}
    assert len(raw) < 40_000


def test_artifact_with_other_features_is_refused() -> None:
    artifacts = resources.files("switchboard.routing").joinpath("artifacts")
    body = json.loads(artifacts.joinpath(ARTIFACT_NAME).read_text(encoding="utf-8"))
    body["shape_names"] = body["shape_names"][:-1]
    with pytest.raises(ValueError, match="question features"):
        read_question_model(io.BytesIO(json.dumps(body).encode()))


def test_decontamination_removes_exact_and_near_copies_of_evaluation_questions() -> None:
    evaluation = [
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "Which planet in the solar system has the largest number of known moons?",
    ]
    index = EvaluationIndex(evaluation)
    items = [
        TrainingItem("gsm8k-train", evaluation[0].upper() + "  ", 2.0),  # exact once normalised
        TrainingItem(
            "gsm8k-train",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
            "How many clips did she sell in total?",
            2.0,
        ),  # near: the same problem, its question reworded
        TrainingItem(
            "mmlu",
            "Which planet in the solar system has the largest number of known moons?\nA. Mars\n"
            "B. Saturn\nC. Venus\nAnswer:",
            0.0,
        ),  # the same stem with options
        TrainingItem("gsm8k-train", "A farmer has 12 cows and buys 7 more. How many cows does he have?", 1.0),
    ]
    kept = decontaminate(items, index)
    assert [item.prompt for item in kept.items] == [items[3].prompt]
    assert kept.removed["gsm8k-train"] == {"exact": 1, "near": 1}
    assert kept.removed["mmlu"] == {"exact": 1}
    assert stem_of(items[2].prompt) == evaluation[1]


def _toy_embedding() -> StaticEmbedding:
    """'hard' and 'easy' on the first two dimensions, the sets' own words on the third."""
    vocabulary = ["[UNK]", "hard", "easy", "alpha", "beta", "which", "?"]
    vectors = np.array(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [0, 0, 0], [0, 0, 0]], dtype=np.float32
    )
    return StaticEmbedding(WordPieces(vocabulary), vectors)


def _toy_items() -> KindData:
    """Two sets: in each, 'hard' items have a larger gap than 'easy' ones; set alpha is harder overall."""
    questions: list[ParsedQuestion] = []
    small: list[float] = []
    tasks: list[str] = []
    for task, level in (("alpha", 0.6), ("beta", 0.0)):
        for word, extra in (("hard", 0.3), ("easy", 0.0)):
            for _ in range(10):
                questions.append(ParsedQuestion("multiple_choice", f"which {task} {word}?", ("x", "y", "z")))
                small.append(1.0 - level - extra)
                tasks.append(task)
    large = np.ones(len(questions))
    return KindData(questions, np.zeros(len(questions)), np.array(small), large, tasks)


def test_the_embedding_fit_learns_which_items_are_harder_within_a_set_not_which_set() -> None:
    data = _toy_items()
    vectors = embed(data.questions, _toy_embedding())
    weights = fit_embedding(vectors, data, EmbeddingSetting(alpha=0.1, target="gap"))
    assert weights[0] - weights[1] > 0.2  # 'hard' above 'easy'
    assert abs(weights[2]) < 1e-9  # the set's own word carries only the set's level: centred away
    hard, easy = embed(
        [ParsedQuestion("multiple_choice", q, ("a", "b", "c")) for q in ("which hard?", "which easy?")],
        _toy_embedding(),
    )
    assert hard @ weights > easy @ weights


def test_leave_one_task_out_scores_a_set_with_weights_fitted_on_the_others_only() -> None:
    data = _toy_items()
    vectors = embed(data.questions, _toy_embedding())
    setting = EmbeddingSetting(alpha=0.1, target="fail")
    scores = leave_one_task_out(vectors, data, setting)
    beta = np.array([t == "beta" for t in data.task])
    alpha_only = fit_embedding(vectors[~beta], subset(data, ~beta), setting)
    assert np.allclose(scores[beta], vectors[beta] @ alpha_only)


def test_the_embedding_reads_the_stem_and_options_without_letters() -> None:
    parsed = parse_question(EXAM_ITEM)
    assert parsed is not None
    text = question_text(parsed)
    assert text.splitlines()[1] == "Reflection from the oceans"
    assert "Answer:" not in text and "\nA." not in text


CALCULATION_ITEM = (
    "A 2 kg mass moves at 3 m/s. Calculate its kinetic energy E = mv^2/2.\n"
    "A. 9 J\nB. 6 J\nC. 18 J\nD. 3 J\nAnswer:"
)


def test_the_computation_prior_scores_a_calculation_above_a_recall_item() -> None:
    calculation, recall = parse_question(CALCULATION_ITEM), parse_question(EXAM_ITEM)
    assert calculation is not None and recall is not None
    assert computation_score(recall) == 0.0  # no numbers, symbols, units or calculation words
    # numbers, "calculate", units, a formula, and every option a number: each part counts
    assert computation_score(calculation) > 5.0


def test_the_second_proxy_pair_puts_mistral_on_the_cheap_side() -> None:
    item = TrainingItem("gsm8k", ONE_STEP, 0.1, small=0.9, large=1.0, family_small=0.2)
    other = TrainingItem("arc_challenge", EXAM_ITEM, 0.0, small=0.5, large=0.5, family_small=0.5)
    eight_b = kind_data([item, other], "word_problem", {"gsm8k"})
    mistral = kind_data([item, other], "word_problem", {"gsm8k"}, family=True)
    assert list(eight_b.small) == [0.9] and list(mistral.small) == [0.2]
    assert list(mistral.large) == [1.0] and mistral.task == ["gsm8k"]


def test_word_problems_are_ranked_by_their_length_alone(router: Router) -> None:
    """Round 8: the word-problem head is the question's length (no term weights): the same length reads the
    same whatever the words, and a longer problem reads higher."""
    assert router.questions is not None
    assert router.questions.kinds["word_problem"].buckets == 0
    same_length = ONE_STEP.replace("apples", "plums!")
    a, b = router.questions.read(ONE_STEP), router.questions.read(same_length)
    longer = router.questions.read(TWO_STEP)
    assert a is not None and b is not None and longer is not None
    assert len(same_length) == len(ONE_STEP) and a.z == b.z
    assert longer.z > a.z
