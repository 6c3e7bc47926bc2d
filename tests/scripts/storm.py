"""A signal storm: SIGALRM every 2 ms while the main thread submits, reads stats and resizes
a pool whose threads retire and restart all the time; the handler reads ``stats()`` (as a
"dump the pool" handler does) and finally shuts the pool down from inside the storm.

Run by ``tests.test_signals`` in a subprocess with a timeout: it must exit cleanly, with
every accepted task run and the counters adding up in every snapshot the handler took.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import Future
from types import FrameType

from threadpool_plus import PoolStats, ThreadPoolExecutor

__all__ = ["main"]


def adds_up(stats: PoolStats) -> bool:
    done = stats.completed + stats.failed + stats.cancelled
    return stats.submitted == done + stats.active + stats.queued


def main(seconds: float = 1.5) -> None:
    pool = ThreadPoolExecutor(4, max_queue_size=8, idle_timeout=0.002, name="storm")
    snapshots: list[PoolStats] = []
    refused: list[str] = []
    shut_down: list[bool] = []
    stop_at = time.monotonic() + seconds

    def handler(signum: int, frame: FrameType | None) -> None:
        if time.monotonic() >= stop_at and not shut_down:
            shut_down.append(True)
            pool.shutdown(wait=True)  # on top of whatever the main thread was doing
            return
        try:
            snapshots.append(pool.stats())
        except RuntimeError as exc:  # it interrupted the pool while it held its lock
            refused.append(str(exc))

    accepted: list[tuple[int, Future[int]]] = []
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
    try:
        n = 0
        while not shut_down:
            try:
                accepted.append((n, pool.submit(pow, 2, n % 16)))
                if n % 64 == 0:
                    snapshots.append(pool.stats())
                if n % 256 == 0:
                    pool.resize(max_workers=1 + (n // 256) % 4)
            except RuntimeError:
                if not shut_down:  # the main thread's own calls are refused only after it
                    raise
            n += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    pool.shutdown(wait=True)
    assert all(future.result(timeout=10) == 2 ** (n % 16) for n, future in accepted)
    assert all(adds_up(s) for s in snapshots), [s for s in snapshots if not adds_up(s)]
    assert all("only shutdown() is safe there" in message for message in refused), refused
    final = pool.stats()
    assert adds_up(final), final
    assert final.workers == 0, final
    assert final.completed == len(accepted), (final, len(accepted))
    print(f"storm: {len(accepted)} tasks, {len(snapshots)} snapshots, {len(refused)} refused")
