"""The static embedding (`switchboard.routing.embedding`): the packaged vocabulary and its WordPiece
tokenisation against Hugging Face `tokenizers` on the same vocabulary; the mean of piece vectors and its
collapse into per-piece scores, which is what the router ships (tests/test_router_meaning.py reads the shipped
scores)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from router_lab.embedding import StaticEmbedding, scores_bytes
from switchboard.routing import embedding as embedding_module
from switchboard.routing.embedding import UNKNOWN, PieceScores, WordPieces


@pytest.fixture(scope="module")
def pieces() -> WordPieces:
    return WordPieces.packaged()


@pytest.fixture(scope="module")
def reference(pieces: WordPieces) -> Tokenizer:
    """BERT's uncased tokenizer as `tokenizers` builds it, on the packaged vocabulary."""
    vocab = {piece: i for i, piece in enumerate(pieces.vocabulary)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=UNKNOWN, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


@pytest.fixture(scope="module")
def embedding(pieces: WordPieces) -> StaticEmbedding:
    """Vectors made up for the arithmetic, on the real vocabulary (the distilled ones are built, not
    shipped)."""
    return StaticEmbedding(pieces, np.random.default_rng(3).normal(size=(len(pieces), 16)).astype(np.float16))


def test_the_packaged_vocabulary_is_all_minilm_l6_v2s(pieces: WordPieces) -> None:
    assert (
        len(pieces) == 29_525 and WordPieces.packaged() is pieces
    )  # [unusedN] dropped by model2vec; read once
    assert pieces.vocabulary[:2] == ("[PAD]", UNKNOWN) and "##ing" in pieces.vocabulary


TEXTS = [
    "Is this upload handler safe? Users can pass ?file=../../etc/passwd",
    "rename `getUserById` to fetch_user — and keep the tests green!!",
    "Naïve café façade: résumé, ÉCOLE, straße",
    "这个函数有竞态条件吗 (race?)",
    "tabs\tand\nnewlines\r\nand  spaces",
    "control\x00chars\x07 and\u200bzero width and \ufffd replacement",
    "emoji 🚀 and symbols ∑ ≥ € and fractions ½",
    "a" * 150 + " supercalifragilisticexpialidocious unkn0wnz0rdz",
    "O(n log n) vs O(n²)? x86_64/arm64; p99<1ms; 10.0.0.1:8080",
    "def naïve_fn(x) → y:  # ½ done\u00a0nbsp\u3000ideographic 日本語abc (café)→ok",
    "mostly ascii code() { return a->b; } // with one → arrow\n\tand a tab",
    "",
    "   ",
]


@pytest.mark.parametrize("text", TEXTS)
def test_its_tokenisation_is_berts_uncased_wordpiece(
    pieces: WordPieces, reference: Tokenizer, text: str
) -> None:
    assert pieces.ids(text) == reference.encode(text, add_special_tokens=False).ids
    assert pieces.ids(text) == pieces.ids(text)  # the word cache gives the same pieces


# ASCII, ASCII whitespace, and what the slow way handles: accents, CJK, other spaces, controls, emoji.
_MIXED = [
    *"ab Z9_-.(){}\t\n\r",
    *"éï→½日本ß🚀",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\x00",
    "\x1c",
    "\u200b",
    "\ufffd",
    "\x85",
]


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(_MIXED), max_size=40))
def test_only_the_chunks_with_a_non_ascii_character_take_the_slow_way_and_it_changes_nothing(
    text: str,
) -> None:
    # The whole text through BERT's character-by-character way gives the same words as the chunked one.
    assert embedding_module._words(text) == embedding_module._unicode_words(text)  # pyright: ignore[reportPrivateUsage]


def test_an_unknown_word_is_one_unknown_piece(pieces: WordPieces) -> None:
    unknown = pieces.vocabulary.index(UNKNOWN)
    assert pieces.ids("x" * 101) == [unknown]
    assert pieces.ids("🚀") == [unknown]
    assert unknown not in pieces.ids("an ordinary sentence about deadlocks")


def test_the_mean_is_the_pieces_average_and_zero_without_pieces(embedding: StaticEmbedding) -> None:
    text = "can two workers pick up the same job at once?"
    vectors = embedding.token_vectors(text)
    assert vectors.shape == (len(embedding.token_ids(text)), embedding.dim)
    assert np.allclose(embedding.mean(text), vectors.mean(axis=0), atol=1e-6)
    assert not embedding.mean("   ").any() and embedding.mean("").shape == (embedding.dim,)


def test_a_linear_function_of_the_mean_collapses_into_per_piece_scores(embedding: StaticEmbedding) -> None:
    rng = np.random.default_rng(7)
    direction = rng.normal(size=embedding.dim)
    collapsed = embedding.collapse(direction)
    assert collapsed.k == 1 and len(collapsed.columns[0]) == len(embedding.pieces)
    for text in TEXTS:
        (score,) = collapsed.mean(text)
        assert score == pytest.approx(float(embedding.mean(text) @ direction), abs=1e-4)
    matrix = rng.normal(size=(embedding.dim, 3))
    several = embedding.collapse(matrix)
    assert several.k == 3
    expected = tuple(float(x) for x in embedding.mean(TEXTS[0]) @ matrix)
    assert several.mean(TEXTS[0]) == pytest.approx(expected, abs=1e-4)


def test_built_vectors_and_shipped_scores_round_trip(embedding: StaticEmbedding, tmp_path: Path) -> None:
    embedding.write(tmp_path)
    again = StaticEmbedding.load(tmp_path)
    assert again.pieces.vocabulary == embedding.pieces.vocabulary
    assert np.array_equal(again.vectors, embedding.vectors)
    scores = embedding.collapse(np.ones(embedding.dim))
    read = PieceScores.read(embedding.pieces, io.BytesIO(scores_bytes(scores)))
    assert read.columns == scores.columns and read.mean("a race") == scores.mean("a race")
    several = embedding.collapse(np.random.default_rng(5).normal(size=(embedding.dim, 3)))
    assert PieceScores.read(embedding.pieces, io.BytesIO(scores_bytes(several))).columns == several.columns


def test_the_router_reads_numpys_own_files_without_numpy(pieces: WordPieces) -> None:
    table = np.random.default_rng(11).normal(size=(len(pieces), 2)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    read = PieceScores.read(pieces, io.BytesIO(buffer.getvalue()))
    assert read.k == 2 and read.score(1234, 1) == float(table[1234, 1])
    for wrong in (table.astype(np.float64), table[:, :1].T.copy(), np.asfortranarray(table)):
        buffer = io.BytesIO()
        np.save(buffer, wrong, allow_pickle=False)
        with pytest.raises(ValueError):
            PieceScores.read(pieces, io.BytesIO(buffer.getvalue()))
    with pytest.raises(ValueError, match=r"not a \.npy"):
        PieceScores.read(pieces, io.BytesIO(b"PK\x03\x04 not numpy"))


def test_a_mismatched_artifact_is_refused(pieces: WordPieces) -> None:
    with pytest.raises(ValueError, match="vocabulary of 2"):
        StaticEmbedding(WordPieces(["[UNK]", "hello"]), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=f"vocabulary of {len(pieces)}"):
        PieceScores(pieces, [[0.0] * 5])
    with pytest.raises(ValueError, match="needs"):
        WordPieces(["hello"])
