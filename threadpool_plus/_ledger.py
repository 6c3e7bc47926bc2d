"""The pool's books: counters, the failure ring and the task timings.

``Ledger`` is the bottom layer of the pool core rather than an object it points to: the
counters are bumped on every task, and reaching them through another attribute would cost
every task a lookup. Every field here is guarded by the core's one lock (``self.lock``).

Timings are appended to plain lists on the hot path and folded into the histograms in
batches (sorting a batch is cheaper than bucketing each value), and whenever someone reads
the histograms, so a reader always sees every task counted so far.
"""

from __future__ import annotations

from collections import deque

from ._failures import TaskFailure
from ._histogram import Histogram, HistogramSnapshot

__all__ = ["FOLD_BATCH", "Ledger"]

# Task timings kept before they are folded into the histograms: large enough that the
# sort amortises, small enough that a fold holds the lock for tens of microseconds.
FOLD_BATCH = 256


class Ledger:
    """Counters and records; every field is guarded by the owning core's lock."""

    # Slots, here and in every layer above: the hot path reads these on every task, and
    # a slot is the fastest attribute CPython has (an instance dict stops being compact
    # past 30 keys, which the whole core exceeds).
    __slots__ = (
        "caller_ran",
        "cancelled",
        "completed",
        "dropped",
        "expired",
        "failed",
        "failures",
        "overrunning",
        "pending_runs",
        "pending_waits",
        "queue_wait",
        "rejected",
        "run_time",
        "submitted",
    )

    def _open_ledger(self, failure_history: int, buckets: tuple[float, ...]) -> None:
        self.submitted = 0  # accepted
        self.completed = 0  # returned normally
        self.failed = 0  # raised, or failed by the pool (broken, no thread)
        self.cancelled = 0  # never ran (cancelled, or a shutdown), or interrupted and returned
        self.rejected = 0  # refused with PoolOverloaded
        self.expired = 0  # past its deadline: never started, or since returned
        self.dropped = 0  # cancelled by overflow="drop_oldest" (also in cancelled)
        self.caller_ran = 0  # run by its submitter, overflow="caller_runs" (also done)
        self.overrunning = 0  # running past its deadline (also in active)
        # The newest failures, oldest first; None when failure_history is 0.
        self.failures: deque[TaskFailure] | None = (
            deque(maxlen=failure_history) if failure_history else None
        )
        self.queue_wait = Histogram(buckets)  # accepted -> started, seconds
        self.run_time = Histogram(buckets)  # started -> returned or raised
        self.pending_waits: list[float] = []  # observations not yet in queue_wait
        self.pending_runs: list[float] = []  # observations not yet in run_time

    def _reset_ledger(self) -> None:
        """Starts the books afresh (in a forked child)."""
        history = 0 if self.failures is None else self.failures.maxlen or 0
        self._open_ledger(history, self.queue_wait.bounds)

    def _record_failure(self, failure: TaskFailure, waited: float, ran: float) -> None:
        """Counts a task that raised. Lock held."""
        self.failed += 1
        if self.failures is not None:
            self.failures.append(failure)
        self.pending_waits.append(waited)
        self.pending_runs.append(ran)
        if len(self.pending_waits) >= FOLD_BATCH:
            self._fold_timings()

    def _fold_timings(self) -> None:
        """Moves the pending timings into the histograms. Lock held."""
        self.queue_wait.fold(self.pending_waits)
        self.run_time.fold(self.pending_runs)
        self.pending_waits.clear()
        self.pending_runs.clear()

    def _histograms(self) -> tuple[HistogramSnapshot, HistogramSnapshot]:
        """Queue-wait and run-time histograms with every timing so far. Lock held."""
        self._fold_timings()
        return self.queue_wait.snapshot(), self.run_time.snapshot()

    def _failure_list(self) -> list[TaskFailure]:
        return [] if self.failures is None else list(self.failures)
