"""Cold start and time-to-first-token, each against a baseline measured in the same run.

- Cold start: spawn → `initialize` result, for `switchboard serve` and for a bare pygls server.
- Time to first token: `switchboard/chat` → first text report through the server, versus the SDK
  calling the same fake API directly; the difference is what the server adds. The server runs on the Power
  plan (an entitlement token, as for paying users); a second server on Free is shown for comparison. The
  fake API runs in its own process, and the three are measured in rotation.

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
sys.path.insert(0, str(HERE))

from common import ExternalFake, power_entitlement  # noqa: E402
from rawlsp import RawServer  # noqa: E402

KEY = "sk-bench-0000000000000000"


def env_for(state: str, base_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=state, SWITCHBOARD_CONFIG_DIR=str(Path(state) / "config"), ANTHROPIC_API_KEY=KEY
    )
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


def _server_once(server: RawServer, msg_id: int, workspace: str, model: str = "claude-haiku-4.5") -> float:
    token = f"t{msg_id}"
    start = time.perf_counter()
    server.request(
        msg_id,
        "switchboard/chat",
        {"workspaceUri": workspace, "prompt": "hello", "modelId": model, "workDoneToken": token},
    )
    first = server.wait_for_progress(token, lambda v: v.get("type") == "text")
    server.wait_for(msg_id)
    return first - start


async def _sdk_once(client: Any) -> float:
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
    assert first is not None
    return first - start


def ttft(base_url: str, runs: int, workspace: str) -> dict[str, list[float]]:
    """Times to the first text: the SDK direct, and through a server on Power (an entitlement token, as for
    paying users; explicit Haiku, and Auto) and on Free (no token), taken in rotation so that all see the
    same moments of a noisy machine. The first of each pays for imports and connections and is dropped."""
    import anthropic

    loop = asyncio.new_event_loop()
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0)
    times: dict[str, list[float]] = {"sdk": [], "power": [], "free": [], "power_auto": []}
    with tempfile.TemporaryDirectory() as state:
        power_env = env_for(str(Path(state) / "power"), base_url)
        power_env.update(power_entitlement(Path(state)))
        servers = {
            "power": RawServer(power_env),
            "free": RawServer(env_for(str(Path(state) / "free"), base_url)),
        }
        try:
            for server in servers.values():
                server.initialize(workspace)
            for index in range(runs + 1):
                sample = {"sdk": loop.run_until_complete(_sdk_once(client))}
                sample.update(
                    {name: _server_once(server, 2 * index + 1, workspace) for name, server in servers.items()}
                )
                # Auto: the same chat, routed (the plan's allowed models are worked out first)
                sample["power_auto"] = _server_once(servers["power"], 2 * index + 2, workspace, "auto")
                if index:
                    for name, value in sample.items():
                        times[name].append(value)
        finally:
            for server in servers.values():
                server.close()
            loop.run_until_complete(client.close())
            loop.close()
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    workspace = Path(tempfile.gettempdir()).as_uri()

    starts = cold_start(args.runs, workspace)
    # The fake runs in its own process, so neither side shares a GIL with it.
    with ExternalFake() as fake:
        times = ttft(fake.base_url, args.runs * 4, workspace)
    direct, through, free = times["sdk"], times["power"], times["free"]
    figures = {
        "initialize_bare_s": starts["bare"],
        "initialize_switchboard_s": starts["switchboard"],
        "initialize_ratio": starts["switchboard"] / starts["bare"],
        "ttft_sdk_ms": statistics.median(direct) * 1000,
        "ttft_server_ms": statistics.median(through) * 1000,
        "ttft_added_ms": (statistics.median(through) - statistics.median(direct)) * 1000,
        "ttft_server_free_ms": statistics.median(free) * 1000,
        "ttft_added_free_ms": (statistics.median(free) - statistics.median(direct)) * 1000,
        "ttft_added_auto_ms": (statistics.median(times["power_auto"]) - statistics.median(direct)) * 1000,
        "ttft_samples": len(direct),
    }
    print(
        f"cold start to initialize   bare pygls {figures['initialize_bare_s']:.3f} s   "
        f"switchboard {figures['initialize_switchboard_s']:.3f} s   ratio {figures['initialize_ratio']:.2f}x "
        "(target <= 1.30x)"
    )
    print(
        f"time to first token        SDK direct {figures['ttft_sdk_ms']:.2f} ms   "
        f"through server {figures['ttft_server_ms']:.2f} ms   added {figures['ttft_added_ms']:.2f} ms "
        f"(target < 5 ms, medians of {len(direct)}; on Power)"
    )
    print(
        f"  diagnostic: on Free (no entitlement token to verify) through server "
        f"{figures['ttft_server_free_ms']:.2f} ms, added {figures['ttft_added_free_ms']:.2f} ms; "
        f"Auto on Power added {figures['ttft_added_auto_ms']:.2f} ms"
    )
    return figures


if __name__ == "__main__":
    main()
