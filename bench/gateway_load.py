"""The hosted gateway under load: time to first token it adds, settled turns per second, RSS per replica.

Everything runs here: a throwaway PostgreSQL cluster (tests/gateway/pgcluster.py), the fake Anthropic API
in its own process, and real `switchboard gateway serve` replicas.

- **Time to first token added**: 200 long streams run in the background (a delta every 50 ms, as a real
  answer streams; read as raw bytes so the measuring process stays free for the probes); meanwhile probe
  turns are sent one after another through the SDK and timed from the request to their first text delta.
  Baseline, same run: the same background load and probes with the SDK calling the fake API directly.
  Added = gateway − direct, at the median and at p99.
- **Settled turns per second**: short non-streamed turns from 64 concurrent clients of 200 accounts (raw
  HTTP), each authenticated, reserved, forwarded and settled, through one replica and through two on one
  PostgreSQL; the ledger is checked afterwards (every turn settled, nothing held). Baseline, same run: the
  same client against the fake API directly, the most this client and upstream can do here (the fake closes
  every connection after its answer, so each turn costs it a TCP connection and a thread).
- **RSS** of each replica once ready (idle) and at its peak while the 200 streams run.

Run: .venv/bin/python bench/gateway_load.py [--streams 200] [--probes 50] [--turns 1500]   (3–6 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import BENCH_KEY, ExternalFake, percentile, rss_mb  # noqa: E402

HAIKU = "claude-haiku-4-5-20251001"
BACKGROUND = "Background essay. [[fake:words=400 slow=0.05]]"
PROBE = "Probe. [[fake:words=5]]"
SHORT = "Short. [[fake:words=3]]"


class Stack:
    """PostgreSQL, signing keys, accounts and gateway replicas for one benchmark run."""

    def __init__(self, upstream: str, root: Path) -> None:
        import psycopg

        from gateway.pgcluster import Cluster
        from switchboard.gateway.migrate import upgrade
        from switchboard.gateway.tokens import new_signing_key

        self.root = root
        self.cluster = Cluster.start()
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gateway")
        self.database_url = self.cluster.url("gateway")
        upgrade(self.database_url)
        keys = [root / "current.pem", root / "next.pem"]
        for key in keys:
            new_signing_key(key)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
        self.env.update(
            SWITCHBOARD_GATEWAY_DATABASE_URL=self.database_url,
            SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL=upstream,
            SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY=BENCH_KEY,
            SWITCHBOARD_GATEWAY_SIGNING_KEYS=os.pathsep.join(str(key) for key in keys),
            SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL="http://gateway.bench",
        )
        self.replicas: list[tuple[subprocess.Popen[bytes], str]] = []

    def start_replicas(self, count: int) -> list[str]:
        import httpx2

        from switchboard.gateway.config import load_settings  # noqa: F401  (fail early on bad settings)

        self.stop_replicas()
        for _ in range(count):
            port = _free_port()
            log = (self.root / f"replica-{port}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.replicas.append((process, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 60
        for process, url in self.replicas:
            while True:
                assert process.poll() is None and time.monotonic() < deadline, "a replica did not start"
                try:
                    if httpx2.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                time.sleep(0.05)
        return [url for _, url in self.replicas]

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.replicas]

    def stop_replicas(self) -> None:
        for process, _ in self.replicas:
            process.terminate()
            process.wait(30)
        self.replicas = []

    async def accounts(self, count: int) -> list[str]:
        """`count` Power accounts with room for any run; their access tokens."""
        import psycopg
        from psycopg.rows import dict_row

        from switchboard.gateway import accounts
        from switchboard.gateway.config import load_settings
        from switchboard.gateway.tokens import TokenAuthority

        authority = TokenAuthority.from_settings(load_settings(self.env))
        tokens = []
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            for _ in range(count):
                email = f"bench-{uuid.uuid4().hex[:10]}@example.test"
                account = await accounts.create_account(conn, email, "bench-password", "power")
                tokens.append(authority.issue(account.id, "power"))
        return tokens

    def close(self) -> None:
        self.stop_replicas()
        self.cluster.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _headers() -> dict[str, str]:
    return {"Switchboard-Turn-Id": f"bench-{uuid.uuid4().hex}", "Switchboard-Model": "claude-haiku-4.5"}


# --- time to first token ------------------------------------------------------------------------------


async def _ttft(
    background_targets: list[tuple[str, dict[str, str]]],
    probe_clients: list[Any],
    streams: int,
    probes: int,
    rss_pids: list[int],
) -> dict[str, Any]:
    """Probe TTFTs (ms, through the SDK) while `streams` background streams run (raw HTTP, bytes discarded,
    so the measuring process spends its time on the probes, not on parsing 4,000 events a second)."""
    import httpx2

    stop = asyncio.Event()
    running = 0
    peak_rss: dict[int, float] = {pid: 0.0 for pid in rss_pids}
    body = {
        "model": HAIKU,
        "max_tokens": 1000,
        "stream": True,
        "messages": [{"role": "user", "content": BACKGROUND}],
    }
    limits = httpx2.Limits(max_connections=streams * 2, max_keepalive_connections=streams * 2)
    http = httpx2.AsyncClient(timeout=60, limits=limits)

    async def background(index: int) -> None:
        nonlocal running
        url, auth = background_targets[index % len(background_targets)]
        while not stop.is_set():
            headers = {**auth, **_headers(), "anthropic-version": "2023-06-01"}
            async with http.stream("POST", url + "/v1/messages", json=body, headers=headers) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"a background stream got HTTP {response.status_code}")
                running += 1
                try:
                    async for _ in response.aiter_raw():
                        if stop.is_set():
                            break
                finally:
                    running -= 1

    async def probe(client: Any) -> float:
        started = time.perf_counter()
        async with client.messages.stream(
            model=HAIKU,
            max_tokens=100,
            messages=[{"role": "user", "content": PROBE}],
            extra_headers=_headers(),
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    first = time.perf_counter()
                    break
            else:
                raise RuntimeError("a probe got no text")
        return (first - started) * 1000

    tasks = [asyncio.create_task(background(i)) for i in range(streams)]
    deadline = time.monotonic() + 60
    while running < streams:
        failed = [task for task in tasks if task.done()]
        if failed or time.monotonic() > deadline:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.aclose()
            raise RuntimeError(f"only {running} of {streams} background streams started: {failed[:1]}")
        await asyncio.sleep(0.05)
    for client in probe_clients[:2]:
        await probe(client)  # warm the probes' connections
    times = []
    concurrent = streams
    for index in range(probes):
        times.append(await probe(probe_clients[index % len(probe_clients)]))
        concurrent = min(concurrent, running)
        for pid in rss_pids:
            peak_rss[pid] = max(peak_rss[pid], rss_mb(pid))
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "concurrent": concurrent,
        "peak_rss_mb": list(peak_rss.values()),
    }


def _sdk(base_url: str, token: str | None) -> Any:
    import anthropic
    import httpx2

    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
    http = anthropic.DefaultAsyncHttpxClient(limits=limits)  # type: ignore[arg-type]
    if token is None:
        return anthropic.AsyncAnthropic(base_url=base_url, api_key=BENCH_KEY, max_retries=0, http_client=http)
    return anthropic.AsyncAnthropic(
        base_url=base_url, auth_token=token, api_key=None, max_retries=0, http_client=http
    )


# --- settled turns per second ---------------------------------------------------------------------------


async def _turns_per_second(targets: list[tuple[str, dict[str, str]]], turns: int, concurrency: int) -> float:
    """Non-streamed short turns, `concurrency` at a time, round robin over (url, auth headers)."""
    import httpx2

    body = {"model": HAIKU, "max_tokens": 50, "messages": [{"role": "user", "content": SHORT}]}
    limits = httpx2.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        next_turn = 0
        failures = 0

        async def worker() -> None:
            nonlocal next_turn, failures
            while next_turn < turns:
                index = next_turn
                next_turn += 1
                url, auth = targets[index % len(targets)]
                headers = {**auth, **_headers()}
                for attempt in range(3):  # as the SDK does: a kept-alive connection the server just closed
                    try:
                        response = await http.post(url + "/v1/messages", json=body, headers=headers)
                        break
                    except httpx2.TransportError:
                        if attempt == 2:
                            raise
                if response.status_code != 200:
                    failures += 1

        for _ in range(2):  # warm up connections
            await asyncio.gather(
                *(http.post(u + "/v1/messages", json=body, headers={**a, **_headers()}) for u, a in targets)
            )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} of {turns} turns failed")
    return turns / elapsed


async def _settled(stack: Stack, urls: list[str], tokens: list[str], turns: int, concurrency: int) -> float:
    """Turns per second through `urls`, checked against the ledger afterwards (every turn settled)."""
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM turns WHERE status = 'complete'").fetchone()
    targets = [(url, {"authorization": f"Bearer {token}"}) for url in urls for token in tokens]
    rate = await _turns_per_second(targets, turns, concurrency)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        after = conn.execute("SELECT count(*) FROM turns WHERE status = 'complete'").fetchone()
        held = conn.execute("SELECT count(*) FROM turns WHERE status = 'reserved'").fetchone()
    assert before and after and held is not None
    settled = after[0] - before[0]
    if settled < turns or held[0]:
        raise RuntimeError(f"only {settled} of {turns} turns settled ({held[0]} still reserved)")
    return rate


async def _run(args: argparse.Namespace, upstream: str, stack: Stack) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # Many accounts, as real traffic has: one account's turns serialize on its balance row by design.
    tokens = await stack.accounts(200)

    # Turns per second: the fake alone, then one replica, then two.
    direct = [(upstream, {"x-api-key": BENCH_KEY})]
    figures["direct_turns_per_s"] = await _turns_per_second(direct, args.turns, args.concurrency)
    urls = stack.start_replicas(1)
    figures["one_replica_turns_per_s"] = await _settled(stack, urls, tokens, args.turns, args.concurrency)
    urls = stack.start_replicas(2)
    await asyncio.sleep(1)
    figures["idle_rss_mb"] = [rss_mb(pid) for pid in stack.pids()]
    figures["two_replicas_turns_per_s"] = await _settled(stack, urls, tokens, args.turns, args.concurrency)

    # Time to first token: direct, then through the two replicas (background streams from 20 accounts).
    direct_clients = [_sdk(upstream, None) for _ in range(2)]
    baseline = await _ttft(direct, direct_clients, args.streams, args.probes, [])
    gateway_clients = [_sdk(url, tokens[0]) for url in urls]
    background = [(url, {"authorization": f"Bearer {token}"}) for url in urls for token in tokens[1:21]]
    through = await _ttft(background, gateway_clients, args.streams, args.probes, stack.pids())
    for client in [*direct_clients, *gateway_clients]:
        await client.close()
    figures.update(
        ttft_direct_p50_ms=baseline["p50_ms"],
        ttft_direct_p99_ms=baseline["p99_ms"],
        ttft_gateway_p50_ms=through["p50_ms"],
        ttft_gateway_p99_ms=through["p99_ms"],
        ttft_added_p50_ms=through["p50_ms"] - baseline["p50_ms"],
        ttft_added_p99_ms=through["p99_ms"] - baseline["p99_ms"],
        concurrent_streams=min(baseline["concurrent"], through["concurrent"]),
        load_rss_mb=through["peak_rss_mb"],
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200, help="background streams during the TTFT probes")
    parser.add_argument("--probes", type=int, default=50, help="timed probe turns per side")
    parser.add_argument("--turns", type=int, default=1500, help="turns per throughput measurement")
    parser.add_argument("--concurrency", type=int, default=64, help="turns in flight in the throughput runs")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="switchboard-bench-gateway-"))
    try:
        with ExternalFake() as fake:
            stack = Stack(fake.base_url, root)
            try:
                figures = asyncio.run(_run(args, fake.base_url, stack))
            finally:
                stack.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _report(figures)
    return figures


def _report(f: dict[str, Any]) -> None:
    print(
        f"TTFT under {f['concurrent_streams']} concurrent streams: "
        f"gateway p50 {f['ttft_gateway_p50_ms']:.2f} ms, "
        f"p99 {f['ttft_gateway_p99_ms']:.2f} ms; SDK direct p50 {f['ttft_direct_p50_ms']:.2f} ms, "
        f"p99 {f['ttft_direct_p99_ms']:.2f} ms; added p50 {f['ttft_added_p50_ms']:+.2f} ms "
        f"(target ≤ 3), p99 {f['ttft_added_p99_ms']:+.2f} ms (target ≤ 15)"
    )
    print(
        f"Settled turns/s: one replica {f['one_replica_turns_per_s']:,.0f}, two replicas "
        f"{f['two_replicas_turns_per_s']:,.0f} (target ≥ 1,000); the fake API alone "
        f"{f['direct_turns_per_s']:,.0f}"
    )
    idle = ", ".join(f"{mb:.0f}" for mb in f["idle_rss_mb"])
    load = ", ".join(f"{mb:.0f}" for mb in f["load_rss_mb"])
    print(f"RSS per replica: idle {idle} MB; under {f['concurrent_streams']} streams {load} MB")


if __name__ == "__main__":
    main()
