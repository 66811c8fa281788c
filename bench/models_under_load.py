"""`switchboard/models` latency while 50 chats stream at once, against the same requests with none streaming.

50 chats stream paced answers (the fake sleeps between deltas, as a real model does) so that all of them are
still streaming while the picker is asked for the model list again and again, one request after another.
Baseline: the same sequence of requests on the same server with nothing streaming. Target: p99 < 20 ms.

Run: .venv/bin/python bench/models_under_load.py [--chats 50] [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BenchServer,
    ExternalFake,
    chat_params,
    clean_env,
    cpu_seconds,
    percentile,
    power_entitlement,
)

# 1,200 words in deltas of three, 25 ms apart: each chat streams for about 10 s.
PACED = "Explain the design [[fake:words=1200 slow=0.025]]"


def _latencies(server: BenchServer, workspace: str, count: int) -> list[float]:
    return [server.timed_call("switchboard/models", {"workspaceUri": workspace}) * 1000 for _ in range(count)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    workspace = Path(tempfile.gettempdir()).as_uri()
    with ExternalFake() as fake, tempfile.TemporaryDirectory() as state:
        server = BenchServer(clean_env(state, fake.base_url, **power_entitlement(Path(state))))
        try:
            server.initialize(workspace)
            server.call("switchboard/chat", chat_params(workspace, "warm up"))  # imports the SDK
            _latencies(server, workspace, 20)  # warm the handlers
            idle = _latencies(server, workspace, args.requests)

            tokens = [f"load-{i}" for i in range(args.chats)]
            ids = [server.request("switchboard/chat", chat_params(workspace, PACED, t)) for t in tokens]
            server.wait_for_text(tokens, timeout=120)
            started, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
            busy = _latencies(server, workspace, args.requests)
            measured_until, cpu_after = time.perf_counter(), cpu_seconds(server.pid)
            still_streaming = sum(
                1
                for t in tokens
                if server.streams[t].ended is None or server.streams[t].ended > measured_until
            )
            answers = [server.wait(i, timeout=180)[1] for i in ids]
            failed = sum(1 for a in answers if "error" in a)
            reports = sum(server.streams[t].texts for t in tokens)
        finally:
            server.close()
        # Diagnostic: the same idle requests on Free (no entitlement token to verify).
        free = BenchServer(clean_env(Path(state) / "free", fake.base_url))
        try:
            free.initialize(workspace)
            _latencies(free, workspace, 20)
            idle_free = _latencies(free, workspace, args.requests)
        finally:
            free.close()
    figures = {
        "idle_free_p50_ms": statistics.median(idle_free),
        "idle_p50_ms": statistics.median(idle),
        "idle_p99_ms": percentile(idle, 99),
        "busy_p50_ms": statistics.median(busy),
        "busy_p99_ms": percentile(busy, 99),
        "busy_max_ms": max(busy),
        "chats": args.chats,
        "still_streaming_at_end": still_streaming,
        "failed_chats": failed,
        "measure_s": measured_until - started,
        "server_cpu_busy": (cpu_after - cpu_before) / (measured_until - started),
        "reports_forwarded": reports,
    }
    print(
        f"models while {args.chats} chats stream  idle p50 {figures['idle_p50_ms']:.2f} ms p99 "
        f"{figures['idle_p99_ms']:.2f} ms   busy p50 {figures['busy_p50_ms']:.2f} ms p99 "
        f"{figures['busy_p99_ms']:.2f} ms (max {figures['busy_max_ms']:.1f}; {still_streaming}/{args.chats} "
        f"still streaming at the last request; {failed} failed; "
        f"server CPU {figures['server_cpu_busy']:.0%} of a core while busy) (target p99 < 20 ms)"
    )
    print(
        f"  diagnostic: idle p50 on Free (no token to verify) {figures['idle_free_p50_ms']:.2f} ms "
        f"vs {figures['idle_p50_ms']:.2f} ms on Power"
    )
    return figures


if __name__ == "__main__":
    main()
