"""The client's asyncio loop on a background thread, so the main thread can own the terminal.

The main thread reads input and receives Ctrl-C (KeyboardInterrupt); the loop thread runs the pygls
client and prints the streamed answer as it arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="switchboard-chat-loop", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` on the loop and waits for it; Ctrl-C interrupts the wait (not the coroutine)."""
        return wait(self.submit(coro))

    def stop(self) -> None:
        """Cancels what is still running (abandoned requests), then stops the loop and its thread."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                wait(self.submit(_cancel_others()), timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def wait(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """The future's result; raises TimeoutError if `timeout` passes first (the future is left alone)."""
    if not wait_done(future, timeout):
        raise TimeoutError
    return future.result()


def wait_done(future: concurrent.futures.Future[Any], timeout: float | None = None) -> bool:
    """Waits in short slices so that Ctrl-C (KeyboardInterrupt) is raised promptly; True once done."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not future.done():
        remaining = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
        if remaining <= 0:
            return False
        concurrent.futures.wait([future], timeout=remaining)
    return True
