"""The main thread blocked in ``submit()`` on a full queue, and a thread that sends it a
signal there (so a signal handler runs on top of the wait for room)."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future
from typing import NamedTuple

from tests import _probe as probe
from tests._support import Gate, wait_until
from tests.scripts.threads import in_thread
from threadpool_plus import ThreadPoolExecutor

__all__ = ["FullPool", "full_pool", "interrupt_when_waiting"]


class FullPool(NamedTuple):
    pool: ThreadPoolExecutor
    gate: Gate  # opening it lets both tasks finish
    running: Future[object]  # the only thread's task, blocked on the gate
    queued: Future[object]  # the queue's only task, also for the gate


def full_pool(name: str = "signalled") -> FullPool:
    """A pool with one thread busy and its queue (of one) full: the next ``submit()``
    waits for room."""
    pool = ThreadPoolExecutor(1, max_queue_size=1, name=name)
    gate = Gate()
    running = pool.submit(gate.wait, "running")
    gate.wait_entered(1)
    queued = pool.submit(gate.wait, "queued")
    return FullPool(pool, gate, running, queued)


def interrupt_when_waiting(
    pool: ThreadPoolExecutor, signum: int = signal.SIGUSR1
) -> threading.Thread:
    """Starts a thread that sends the main thread ``signum`` once it waits for room in
    ``pool``; returns that thread."""
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        wait_until(lambda: probe.waiting(pool) == 1)
        signal.pthread_kill(main, signum)

    return in_thread(interrupt)
