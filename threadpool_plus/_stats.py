"""The frozen snapshot returned by ``ThreadPoolExecutor.stats()``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStats"]


@dataclass(frozen=True)
class PoolStats:
    """One consistent snapshot of a pool, taken under the pool's lock.

    In every snapshot
    ``submitted == completed + failed + cancelled + expired + active + queued``.

    Attributes:
        workers: Live worker threads.
        idle_workers: Threads waiting for work.
        active: Tasks handed to a thread and not yet finished.
        queued: Accepted tasks waiting for a thread (a future the caller cancelled
            stays here until the pool discards it).
        queue_capacity: ``max_queue_size``; 0 means unbounded.
        min_workers: Threads kept alive even when idle.
        max_workers: The most threads the pool will run at once.
        peak_workers: The most live threads seen at once.
        submitted: Tasks accepted (rejected tasks are not counted here).
        completed: Tasks that returned normally.
        failed: Tasks that raised, or that the pool failed because it broke.
        cancelled: Tasks cancelled before they started, or interrupted while running
            (``future.cancel(interrupt=True)``) and since returned.
        rejected: Submissions refused with ``PoolOverloaded``.
        expired: Tasks whose deadline passed: never started, or since returned.
        overrunning: Threads still running a task whose deadline passed (its future has
            failed with ``TaskTimeout``; the task is still counted in ``active``).
        waiting_submitters: Callers blocked in ``submit`` (or ``map``) waiting for room.
        dropped: Queued tasks cancelled to make room (``overflow="drop_oldest"``); also in
            ``cancelled``.
        caller_ran: Tasks run by their submitting thread (``overflow="caller_runs"``); also
            in ``completed`` or ``failed``.
    """

    workers: int
    idle_workers: int
    active: int
    queued: int
    queue_capacity: int
    min_workers: int
    max_workers: int
    peak_workers: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    expired: int = 0
    overrunning: int = 0
    waiting_submitters: int = 0
    dropped: int = 0
    caller_ran: int = 0

    @property
    def busy_workers(self) -> int:
        """Threads that are not idle (running a task or about to)."""
        return self.workers - self.idle_workers
