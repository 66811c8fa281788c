"""Starts gateway replicas by forking a process that has already imported the gateway (as gunicorn's
`--preload` does), so a test that kills replicas dozens of times does not pay Python's start-up for each.

Each child is a real, separate `switchboard gateway serve` process: its own event loop, pool, reaper and
socket, and SIGKILL ends it as it would any replica. The forker reads `PORT LOG_PATH` lines on stdin and
answers each with the child's pid; it reaps children as they die and exits when stdin closes.

Run: python tests/gateway/replica_forker.py   (with the replicas' SWITCHBOARD_GATEWAY_* environment)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

# Everything a replica imports, imported once here, before any thread or event loop exists.
import uvicorn  # noqa: F401

import switchboard.gateway.app
from switchboard.gateway import cli
from switchboard.gateway.auto import AutoRouter


def _dump_tasks(signum: int, frame: object) -> None:
    """SIGUSR2: every asyncio task's stack to the log (what a stuck replica is waiting for)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        for task in asyncio.all_tasks(loop):
            task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def _child(port: str, log_path: str) -> None:
    signal.signal(signal.SIGUSR2, _dump_tasks)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        code = cli.main(["serve", "--port", port])
    finally:
        os._exit(code)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def main() -> None:
    assert switchboard.gateway.app  # imported for the children
    AutoRouter.warm_up()  # Auto's router, loaded once for every child
    for line in sys.stdin:
        _reap()
        port, log_path = line.split(maxsplit=1)
        pid = os.fork()
        if pid == 0:
            _child(port, log_path.strip())
        print(pid, flush=True)
    _reap()


if __name__ == "__main__":
    main()
