"""Every benchmark in one run, each against its baseline measured in the same run, then one table.

Run: .venv/bin/python bench/run_all.py [--json results.json]

About four to five minutes on a shared 2-core machine. The figures are noisy there (other jobs run at the
same time), which is why every figure sits next to a baseline taken minutes apart on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import verdict  # noqa: E402
from router_lab.editor_traffic.suite import unreleased_batches  # noqa: E402

Row = tuple[str, str, str, str, str]  # benchmark, figure, baseline, target, verdict


def _run(name: str, argv: list[str]) -> tuple[Any, float, str | None]:
    """Runs `bench/<name>.py`'s main; (figures, seconds, error)."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(name)
        main: Callable[..., Any] = module.main
        figures = main(argv) if inspect.signature(main).parameters else main()
        return figures, time.perf_counter() - started, None
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        return None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


def latency_rows(f: dict[str, Any]) -> list[Row]:
    return [
        (
            "Cold start → initialize answer",
            f"{f['initialize_switchboard_s']:.3f} s ({f['initialize_ratio']:.2f}×)",
            f"bare pygls {f['initialize_bare_s']:.3f} s",
            "≤ 1.3× bare",
            verdict(f["initialize_ratio"] <= 1.3),
        ),
        (
            "Time to first token added",
            f"+{f['ttft_added_ms']:.2f} ms on Power (server {f['ttft_server_ms']:.2f} ms; "
            f"Free +{f['ttft_added_free_ms']:.2f}, Auto +{f['ttft_added_auto_ms']:.2f})",
            f"SDK direct {f['ttft_sdk_ms']:.2f} ms",
            "< 5 ms (median)",
            verdict(f["ttft_added_ms"] < 5),
        ),
    ]


def streaming_rows(f: dict[str, Any]) -> list[Row]:
    return [
        (
            "Deltas forwarded / s (long fast stream)",
            f"{f['server_deltas_per_s']:,.0f} deltas/s as {f['server_reports_per_s']:,.0f} reports/s "
            f"({f['server_chars_per_s'] / 1000:,.0f}k chars/s)",
            f"SDK direct {f['sdk_deltas_per_s']:,.0f} deltas/s ({f['sdk_chars_per_s'] / 1000:,.0f}k chars/s)",
            f"(no target; {f['ratio']:.0%} of SDK)",
            "n/a",
        )
    ]


def models_rows(f: dict[str, Any]) -> list[Row]:
    return [
        (
            f"`switchboard/models` while {f['chats']} chats stream",
            f"p99 {f['busy_p99_ms']:.1f} ms (p50 {f['busy_p50_ms']:.1f}, max {f['busy_max_ms']:.0f}; "
            f"{f['still_streaming_at_end']}/{f['chats']} streaming)",
            f"no chats: p99 {f['idle_p99_ms']:.1f} ms (p50 {f['idle_p50_ms']:.1f})",
            "p99 < 20 ms",
            verdict(f["busy_p99_ms"] < 20 and f["failed_chats"] == 0),
        )
    ]


def store_rows(f: dict[str, Any]) -> list[Row]:
    big, small, server = f["store"]["big"], f["store"]["small"], f["server"]
    rows: list[Row] = []
    for what, label, target in (
        ("list", "Store: list 10,000 conversations", 50),
        ("open", "Store: open one (20 turns)", 10),
        ("append", "Store: append a turn", 5),
    ):
        rows.append(
            (
                label,
                f"p50 {big[f'{what}_p50_ms']:.2f} ms (p99 {big[f'{what}_p99_ms']:.1f})",
                f"10 conversations: p50 {small[f'{what}_p50_ms']:.2f} ms (p99 {small[f'{what}_p99_ms']:.1f})",
                f"< {target} ms",
                verdict(big[f"{what}_p50_ms"] < target),
            )
        )
    rows.append(
        (
            "  …the same list through the server",
            f"p50 {server['server_list_p50_ms']:.0f} ms ({server['server_listed']:,} summaries)",
            f"open through the server: p50 {server['server_open_p50_ms']:.1f} ms",
            "(context)",
            "n/a",
        )
    )
    return rows


def ledger_rows(f: dict[str, Any]) -> list[Row]:
    return [
        (
            "Ledger charges / s, two processes at once",
            f"{f['two_per_s']:,.0f}/s in total, exact: {'yes' if f['exact'] else 'NO'}",
            f"one process {f['one_per_s']:,.0f}/s",
            "exact totals",
            verdict(bool(f["exact"])),
        ),
        (
            "  …one process, 20,000 turns already this month",
            f"{f['prefilled_per_s']:,.0f}/s",
            f"empty ledger {f['one_per_s']:,.0f}/s",
            "(diagnostic)",
            "n/a",
        ),
    ]


def memory_rows(f: dict[str, Any]) -> list[Row]:
    series = ", ".join(f"{n}: {mb:.0f}" for n, mb in f["samples_mb"].items())
    flat = f["growth_after_first_checkpoint_mb"] < 10
    return [
        (
            "Server RSS after 1,000 turns",
            f"{f['final_mb']:.0f} MB (before 1st chat {f['before_first_chat_mb']:.0f}; {series}; "
            f"{f['growth_after_first_checkpoint_mb']:+.1f} MB after 250)",
            f"bare pygls {f['bare_mb']:.0f} MB",
            "< 150 MB, flat",
            verdict(f["final_mb"] < 150 and flat),
        )
    ]


def gateway_rows(f: dict[str, Any]) -> list[Row]:
    idle = ", ".join(f"{mb:.0f}" for mb in f["idle_rss_mb"])
    load = ", ".join(f"{mb:.0f}" for mb in f["load_rss_mb"])
    return [
        (
            f"Gateway: time to first token added, {f['concurrent_streams']} streams",
            f"p50 {f['ttft_added_p50_ms']:+.1f} ms, p99 {f['ttft_added_p99_ms']:+.1f} ms "
            f"(through it p50 {f['ttft_gateway_p50_ms']:.1f}, p99 {f['ttft_gateway_p99_ms']:.1f})",
            f"SDK direct p50 {f['ttft_direct_p50_ms']:.1f} ms, p99 {f['ttft_direct_p99_ms']:.1f}",
            "p50 ≤ +3 ms, p99 ≤ +15 ms",
            verdict(
                f["ttft_added_p50_ms"] <= 3
                and f["ttft_added_p99_ms"] <= 15
                and not (f["ttft_refused"] or f["background_refused"])
            ),
        ),
        (
            "Gateway: settled turns / s",
            f"two replicas {f['two_replicas_turns_per_s']:,.0f}/s, one {f['one_replica_turns_per_s']:,.0f}/s",
            f"fake API alone {f['direct_turns_per_s']:,.0f}/s",
            "≥ 1,000/s (two replicas)",
            verdict(f["two_replicas_turns_per_s"] >= 1000),
        ),
        (
            "Gateway: RSS per replica",
            f"under {f['concurrent_streams']} streams {load} MB",
            f"idle {idle} MB",
            "(no target)",
            "n/a",
        ),
    ]


def router_rows(f: Any) -> list[Row]:
    if not isinstance(f, dict):
        return [("Router decision latency", "see its output above", "", "p50/p99", "n/a")]
    flat = {str(k): v for k, v in f.items() if isinstance(v, int | float)}
    shown = {k: v for k, v in flat.items() if "p50" in k or "p99" in k} or flat
    figure = ", ".join(f"{k} {v:.3g}" for k, v in list(shown.items())[:4])
    return [("Router decision latency", figure or "see its output above", "", "p50/p99", "n/a")]


# The newest fresh batch not released to development (fresh6, …): the only honest editor-traffic figure.
EDITOR_TEST_BATCH = (unreleased_batches() or [None])[-1]


def editor_traffic_rows(f: dict[str, dict[str, float]]) -> list[Row]:
    auto, random, labels = f["auto"], f["random"], f["labels"]
    worst = min(v for k, v in auto.items() if k.startswith("category:"))
    met = (
        auto["sonnet_share"] <= 0.30
        and auto["easy_escalated"] <= 0.15
        and auto["hard_caught"] >= 0.70
        and worst >= 0.85
    )
    share, cost, easy, hard = (
        auto[k] for k in ("sonnet_share", "cost_ratio", "easy_escalated", "hard_caught")
    )
    return [
        (
            f"Auto on editor traffic (issue 18's suite, test batch {EDITOR_TEST_BATCH})",
            f"Sonnet {share:.0%}, cost {cost:.0%} of always-Sonnet; easy escalated {easy:.0%}, "
            f"hard caught {hard:.0%}, worst category {worst:.0%}",
            f"random at that share: agreement {random['agreement']:.0%}; "
            f"labels: cost {labels['cost_ratio']:.0%}",
            "≤ 30% Sonnet, ≤ 15% easy up, ≥ 70% hard, categories ≥ 85%",
            verdict(met),
        )
    ]


SECTIONS: list[tuple[str, list[str], Callable[[Any], list[Row]]]] = [
    ("server_latency", ["--runs", "9"], latency_rows),
    ("streaming", ["--runs", "5"], streaming_rows),
    ("models_under_load", ["--requests", "500"], models_rows),
    ("store_scale", [], store_rows),
    ("ledger_throughput", [], ledger_rows),
    ("memory", [], memory_rows),
    ("gateway_load", [], gateway_rows),
]
# data/ and the released fresh batches are what the router was fitted and tuned on: only an unreleased batch
# gives an honest figure, so without one there is no editor-traffic row.
if EDITOR_TEST_BATCH is not None:
    SECTIONS.append(("router_editor_traffic", ["--part", EDITOR_TEST_BATCH], editor_traffic_rows))


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    system = f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu})"
    return f"{system}, Python {platform.python_version()}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"Switchboard benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}\n")
    rows: list[Row] = []
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for name, bench_argv, to_rows in SECTIONS:
        figures, seconds, error = _run(name, bench_argv)
        timings[name], results[name] = seconds, figures
        rows += to_rows(figures) if error is None else [(name, f"failed: {error}", "", "", "ERROR")]
    for name in ("router_latency", "router_eval"):
        if (HERE / f"{name}.py").exists():
            with (
                contextlib.redirect_stdout(io.StringIO())
                if name == "router_eval"
                else contextlib.nullcontext()
            ):
                figures, seconds, error = _run(name, [])
            timings[name], results[name] = seconds, figures
            if name == "router_latency":
                rows += (
                    router_rows(figures) if error is None else [(name, f"failed: {error}", "", "", "ERROR")]
                )
            elif error is not None:
                rows.append((name, f"failed: {error}", "", "", "ERROR"))
        elif name == "router_latency":
            rows.append(
                ("Router decision latency", "n/a (bench/router_latency.py not present)", "", "p50/p99", "n/a")
            )

    total = time.perf_counter() - started
    print()
    _print_table(rows)
    print(f"\nTotal {total:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "results": results}, indent=2, default=str)
        )
    return 0 if all(row[4] != "ERROR" for row in rows) else 1


def _print_table(rows: list[Row]) -> None:
    header: Row = ("Benchmark", "Result", "Baseline (same run)", "Target", "Verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "+".join("-" * (w + 2) for w in widths)
    for index, row in enumerate([header, *rows]):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + line + "|")


if __name__ == "__main__":
    sys.exit(main())
