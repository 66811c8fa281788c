"""The prompt features of the difficulty model, shared by training and by the router at run time.

Two parts, both cheap enough for every request:

* **word n-grams**: lower-cased words of two or more letters/digits (scikit-learn's default token pattern),
  as unigrams and bigrams, TF-IDF weighted (sublinear term frequency, smoothed IDF) and L2-normalised over
  the n-grams the vocabulary knows;
* **numeric shape features**: length, numbers, lines, questions, sentences, code and multiple-choice
  markers, word length, capitals, math operators. Standardised with the training mean and spread.

Long prompts are read only in part (`MAX_HEAD_CHARS` from the start and `MAX_TAIL_CHARS` from the end), so a
pasted 200 KB file costs the same as a 2.5 KB prompt; the length features still see the whole length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise

MAX_HEAD_CHARS = 2000
MAX_TAIL_CHARS = 500

_WORD = re.compile(r"\w\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_CHOICES = re.compile(r"\n\(?A[.)] ")
# Substrings that mark code (plain `in` checks: a regex over 4 KB costs ~0.5 ms, these a few microseconds).
CODE_MARKERS = (
    "def ", "```", "=>", "){", ") {", ";\n", "};", "#include", "function ", "function(", "import ",
    "return ", "self.", "this.", "console.", "print(", "fn ", "const ", "var ", "let ", "</",
)  # fmt: skip
_OPERATORS = "+-*/=^<>"

NUMERIC_FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_numbers",
    "log_lines",
    "log_questions",
    "log_sentences",
    "has_choices",
    "looks_like_code",
    "mean_word_length",
    "capital_share",
    "log_operators",
    "log_dollars",
)


def excerpt(text: str) -> str:
    """The part of a prompt that is read: all of it when short, else its head and its tail."""
    if len(text) <= MAX_HEAD_CHARS + MAX_TAIL_CHARS:
        return text
    return text[:MAX_HEAD_CHARS] + "\n" + text[-MAX_TAIL_CHARS:]


def ngrams(text: str) -> list[str]:
    """Unigrams and bigrams of the lower-cased words of `text` (already an excerpt)."""
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def ngram_counts(text: str) -> Counter[str]:
    return Counter(ngrams(text))


def numeric_features(prompt: str) -> list[float]:
    """The raw (unscaled) numeric features, in `NUMERIC_FEATURE_NAMES` order."""
    part = excerpt(prompt)
    words = part.split()
    word_share = len(words) / max(1, len(part))
    mean_word_length = len("".join(words)) / len(words) if words else 0.0
    capitals = sum(map(str.isupper, part))
    operators = sum(map(part.count, _OPERATORS))
    return [
        math.log1p(len(prompt)),
        math.log1p(word_share * len(prompt)),
        math.log1p(len(_NUMBER.findall(part))),
        math.log1p(part.count("\n")),
        math.log1p(part.count("?")),
        math.log1p(len(_SENTENCE_END.findall(part))),
        1.0 if _CHOICES.search(part) else 0.0,
        1.0 if _has_code_marker(part) else 0.0,
        min(mean_word_length, 20.0),
        capitals / max(1, len(part)),
        math.log1p(operators),
        math.log1p(part.count("$")),
    ]


def _has_code_marker(text: str) -> bool:
    return any(marker in text for marker in CODE_MARKERS)


def looks_like_code(text: str) -> bool:
    return _has_code_marker(excerpt(text))
