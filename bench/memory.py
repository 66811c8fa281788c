"""Server memory: RSS before the first chat and every 250 turns up to 1,000, against a bare pygls server.

The turns are ordinary short chats in conversations of 10 turns (so history is replayed, as in real use),
4 at a time. Target: under 150 MB after 1,000 turns, and flat (what the first turns cost is the SDK import
and warm caches; after that it should not keep growing).

Run: .venv/bin/python bench/memory.py [--turns 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BARE, BenchServer, ExternalFake, chat_params, clean_env, power_entitlement, rss_mb

CONCURRENCY = 4
TURNS_PER_CONVERSATION = 10
CHECKPOINTS = (250, 500, 750, 1000)


def bare_rss(workspace: str) -> float:
    with tempfile.TemporaryDirectory() as state:
        server = BenchServer(clean_env(state), command=BARE)
        try:
            server.initialize(workspace)
            time.sleep(0.5)
            return rss_mb(server.pid)
        finally:
            server.close()


def run_turns(
    server: BenchServer, workspace: str, turns: int, checkpoints: tuple[int, ...]
) -> dict[int, float]:
    """Chats `turns` times, CONCURRENCY at a time; RSS (MB) at each checkpoint."""
    samples: dict[int, float] = {}
    conversations: list[str | None] = [None] * CONCURRENCY
    done = 0
    pending = sorted(checkpoints)
    while done < turns:
        batch = min(CONCURRENCY, turns - done, (pending[0] if pending else turns) - done)
        ids = []
        for lane in range(batch):
            extra = {"conversationId": conversations[lane]} if conversations[lane] else {}
            prompt = f"Turn {done + lane}: what does this function return, and why? def f(x): return x * 2"
            ids.append(server.request("switchboard/chat", chat_params(workspace, prompt, **extra)))
        for lane, msg_id in enumerate(ids):
            frame = server.wait(msg_id, timeout=120)[1]
            if "error" in frame:
                raise RuntimeError(f"chat failed: {frame['error']}")
            conversation = frame["result"]["conversationId"]
            fresh = (done + lane) // CONCURRENCY % TURNS_PER_CONVERSATION == TURNS_PER_CONVERSATION - 1
            conversations[lane] = None if fresh else conversation
        done += batch
        if pending and done == pending[0]:
            samples[pending.pop(0)] = rss_mb(server.pid)
    return samples


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=1000)
    args = parser.parse_args(argv)
    checkpoints = tuple(c for c in CHECKPOINTS if c <= args.turns) or (args.turns,)
    workspace = Path(tempfile.gettempdir()).as_uri()
    bare = bare_rss(workspace)
    with ExternalFake() as fake, tempfile.TemporaryDirectory() as state:
        server = BenchServer(clean_env(state, fake.base_url, **power_entitlement(Path(state))))
        try:
            server.initialize(workspace)
            time.sleep(0.5)
            initialized = rss_mb(server.pid)
            # on `initialized` the server imports the SDK in the background: wait until that settles
            time.sleep(3)
            before_chat = rss_mb(server.pid)
            started = time.perf_counter()
            samples = run_turns(server, workspace, args.turns, checkpoints)
            elapsed = time.perf_counter() - started
        finally:
            server.close()
    last = samples[checkpoints[-1]]
    growth = last - samples[checkpoints[0]]
    figures = {
        "bare_mb": bare,
        "initialized_mb": initialized,
        "before_first_chat_mb": before_chat,
        "samples_mb": samples,
        "final_mb": last,
        "growth_after_first_checkpoint_mb": growth,
        "turns_per_s": args.turns / elapsed,
    }
    series = "  ".join(f"{n}: {mb:.0f}" for n, mb in [(0, before_chat), *samples.items()])
    print(
        f"server RSS (MB)            bare pygls {bare:.0f}   switchboard after initialize {initialized:.0f}, "
        f"turns {series}   growth {checkpoints[0]}→{checkpoints[-1]}: {growth:+.1f} MB "
        f"({args.turns / elapsed:.0f} turns/s) (target < 150 MB, flat)"
    )
    return figures


if __name__ == "__main__":
    main()
