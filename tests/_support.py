"""Helpers shared by the tests: gates, deadlines and thread accounting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEADLINE = 10.0  # seconds an "eventually" condition may take before the test fails


def wait_until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Polls ``predicate`` until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(0.001)


def threads_named(prefix: str) -> list[threading.Thread]:
    """The live threads whose name starts with ``prefix + '_'`` (a pool's workers)."""
    return [t for t in threading.enumerate() if t.name.startswith(prefix + "_")]


class Gate:
    """Tasks block on ``wait()`` until the test calls ``open()``; ``entered`` counts them."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.entered = 0

    def wait(self, value: object = None) -> object:
        with self._lock:
            self.entered += 1
        if not self._event.wait(DEADLINE):
            raise AssertionError("gate was never opened")
        return value

    def wait_entered(self, count: int) -> None:
        """Waits until ``count`` tasks are blocked in ``wait()``."""
        wait_until(lambda: self.entered >= count)

    def open(self) -> None:
        self._event.set()
