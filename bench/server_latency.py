"""Cold start and time-to-first-token, each against a baseline measured in the same run.

- Cold start: spawn → `initialize` result, for `switchboard serve` and for a bare pygls server.
- Time to first token: `switchboard/chat` → first text report through the server, versus the SDK
  calling the same fake API directly; the difference is what the server adds.

Run: .venv/bin/python bench/server_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from rawlsp import RawServer  # noqa: E402
from switchboard.fakeapi import FakeAnthropic  # noqa: E402

KEY = "sk-bench-0000000000000000"


def env_for(state: str, base_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(SWITCHBOARD_HOME=state, ANTHROPIC_API_KEY=KEY)
    if base_url:
        env["ANTHROPIC_BASE_URL"] = base_url
    return env


def time_initialize(command: list[str] | None, env: dict[str, str], workspace: str) -> float:
    start = time.perf_counter()
    server = RawServer(env, command=command)
    server.initialize(workspace)
    elapsed = time.perf_counter() - start
    server.close()
    return elapsed


def cold_start(runs: int, workspace: str) -> dict[str, float]:
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as state:
        env = env_for(state, None)
        time_initialize(None, env, workspace)  # warm the OS file cache for both
        time_initialize([sys.executable, str(HERE / "bare_server.py")], env, workspace)
        for _ in range(runs):
            bare.append(time_initialize([sys.executable, str(HERE / "bare_server.py")], env, workspace))
            ours.append(time_initialize(None, env, workspace))
    return {"bare": statistics.median(bare), "switchboard": statistics.median(ours)}


def server_ttft(fake: FakeAnthropic, runs: int, workspace: str) -> list[float]:
    times: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        server = RawServer(env_for(state, fake.base_url))
        server.initialize(workspace)
        for index in range(runs + 1):
            token = f"t{index}"
            start = time.perf_counter()
            server.request(
                index + 1,
                "switchboard/chat",
                {
                    "workspaceUri": workspace,
                    "prompt": "hello",
                    "modelId": "claude-haiku-4.5",
                    "workDoneToken": token,
                },
            )
            first = server.wait_for_progress(token, lambda v: v.get("type") == "text")
            if index:  # the first chat also pays for the SDK import: not what we measure
                times.append(first - start)
            server.wait_for(index + 1)
        server.close()
    return times


async def sdk_ttft(fake: FakeAnthropic, runs: int) -> list[float]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=fake.base_url, max_retries=0)
    times: list[float] = []
    for index in range(runs + 1):
        start = time.perf_counter()
        stream = await client.messages.create(
            model="claude-haiku-4-5-20251001",
            max_tokens=1024,
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
        )
        first: float | None = None
        async with stream:
            async for event in stream:
                if first is None and event.type == "content_block_delta":
                    first = time.perf_counter()
        if index and first is not None:
            times.append(first - start)
    await client.close()
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    workspace = Path(tempfile.gettempdir()).as_uri()

    starts = cold_start(args.runs, workspace)
    with FakeAnthropic(host="127.0.0.1", port=0) as fake:
        direct = asyncio.run(sdk_ttft(fake, args.runs * 2))
        through = server_ttft(fake, args.runs * 2, workspace)
    figures = {
        "initialize_bare_s": starts["bare"],
        "initialize_switchboard_s": starts["switchboard"],
        "initialize_ratio": starts["switchboard"] / starts["bare"],
        "ttft_sdk_ms": statistics.median(direct) * 1000,
        "ttft_server_ms": statistics.median(through) * 1000,
        "ttft_added_ms": (statistics.median(through) - statistics.median(direct)) * 1000,
    }
    print(
        f"cold start to initialize   bare pygls {figures['initialize_bare_s']:.3f} s   "
        f"switchboard {figures['initialize_switchboard_s']:.3f} s   ratio {figures['initialize_ratio']:.2f}x "
        "(target <= 1.30x)"
    )
    print(
        f"time to first token        SDK direct {figures['ttft_sdk_ms']:.2f} ms   "
        f"through server {figures['ttft_server_ms']:.2f} ms   added {figures['ttft_added_ms']:.2f} ms "
        "(target < 5 ms, medians)"
    )
    return figures


if __name__ == "__main__":
    main()
