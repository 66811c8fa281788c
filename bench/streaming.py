"""Deltas forwarded per second: a long, fast answer through the server against the SDK reading it directly.

The fake API sends an ~8,000-token answer as fast as it can (about 2,000 SSE text deltas of three words).
Baseline: the SDK's async stream from the same fake, counting `content_block_delta` events and characters.
Through the server: `$/progress` text reports and characters on the client side. The server merges deltas
that arrive within 16 ms into one report on purpose (streaming.py, COALESCE_SECONDS), so reports/s is not
deltas/s; characters per second is the like-for-like throughput, and the stream's duration shows whether
the server holds the answer back.

Run: .venv/bin/python bench/streaming.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_KEY, BenchServer, ExternalFake, chat_params, clean_env, power_entitlement

LONG = "Stream a long answer [[fake:words=7000]]"
MAX_TOKENS = 8192  # the server's default output cap: both sides get the same answer


async def _sdk_runs(base_url: str, runs: int) -> list[dict[str, float]]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=BENCH_KEY, base_url=base_url, max_retries=0)
    results: list[dict[str, float]] = []
    for index in range(runs + 1):
        start = time.perf_counter()
        first = last = start
        deltas = chars = 0
        stream = await client.messages.create(
            model="claude-haiku-4-5-20251001",
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": LONG}],
            stream=True,
        )
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    now = time.perf_counter()
                    if not deltas:
                        first = now
                    last = now
                    deltas += 1
                    chars += len(event.delta.text)
        if index:  # the first run warms up the connection pool
            results.append(_rates(deltas, chars, first, last, start))
    await client.close()
    return results


def _rates(units: int, chars: int, first: float, last: float, start: float) -> dict[str, float]:
    span = max(last - first, 1e-9)
    return {
        "units": units,
        "chars": chars,
        "per_s": units / span,
        "chars_per_s": chars / span,
        "total_s": last - start,
    }


def _server_runs(base_url: str, runs: int, workspace: str) -> list[dict[str, float]]:
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as state:
        env = clean_env(state, base_url, **power_entitlement(Path(state)))
        server = BenchServer(env)
        try:
            server.initialize(workspace)
            for index in range(runs + 1):
                token = f"long-{index}"
                start = time.perf_counter()
                server.call("switchboard/chat", chat_params(workspace, LONG, token))
                stream = server.streams[token]
                assert stream.first_text is not None and stream.last_text is not None
                if index:  # the first chat also imports the SDK
                    results.append(
                        _rates(stream.texts, stream.chars, stream.first_text, stream.last_text, start)
                    )
        finally:
            server.close()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    workspace = Path(tempfile.gettempdir()).as_uri()
    with ExternalFake() as fake:
        direct = asyncio.run(_sdk_runs(fake.base_url, args.runs))
        through = _server_runs(fake.base_url, args.runs, workspace)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    figures = {
        "sdk_deltas": med(direct, "units"),
        "sdk_deltas_per_s": med(direct, "per_s"),
        "sdk_chars_per_s": med(direct, "chars_per_s"),
        "sdk_stream_s": med(direct, "total_s"),
        "server_reports": med(through, "units"),
        "server_reports_per_s": med(through, "per_s"),
        "server_chars_per_s": med(through, "chars_per_s"),
        "server_stream_s": med(through, "total_s"),
    }
    # The same answer (same prompt and model) through the server: its deltas over the server's stream span.
    figures["server_deltas_per_s"] = (
        figures["sdk_deltas"] * figures["server_chars_per_s"] / (med(direct, "chars") or 1)
    )
    figures["ratio"] = figures["server_deltas_per_s"] / figures["sdk_deltas_per_s"]
    print(
        f"deltas forwarded           SDK direct {figures['sdk_deltas_per_s']:,.0f} deltas/s "
        f"({figures['sdk_chars_per_s'] / 1000:,.0f}k chars/s, {figures['sdk_stream_s']:.2f} s)   "
        f"through server {figures['server_deltas_per_s']:,.0f} deltas/s "
        f"as {figures['server_reports_per_s']:,.0f} reports/s "
        f"({figures['server_chars_per_s'] / 1000:,.0f}k chars/s, {figures['server_stream_s']:.2f} s, "
        f"{figures['sdk_deltas']:.0f} deltas → {figures['server_reports']:.0f} reports)"
    )
    return figures


if __name__ == "__main__":
    main()
