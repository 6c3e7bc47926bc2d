"""The pool's books: counters, the failure ring and the task timings.

``Ledger`` is the bottom layer of the pool core rather than an object it points to: the
counters are bumped on every task, and reaching them through another attribute would cost
every task a lookup. Every field here is guarded by the core's one lock (``self.lock``).

Timings are appended to plain lists on the hot path and folded into the histograms in
batches (sorting a batch is cheaper than bucketing each value), and whenever someone reads
the histograms, so a reader always sees every task counted so far.

A fold also copies the batch into each attached ``TimingTap`` (an exporter that records
every task's timings elsewhere: OpenTelemetry's histograms). The tap is checked once per
batch, never per task, so a pool without one pays nothing for the feature, and a pool with
one pays a list copy per batch: the exporter records the values outside the pool's lock, in
its own thread (``otel.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ._failures import TaskFailure
from ._histogram import Histogram, HistogramSnapshot

__all__ = ["FOLD_BATCH", "Ledger", "TimingTap"]

# Task timings kept before they are folded into the histograms: large enough that the
# sort amortises, small enough that a fold holds the lock for tens of microseconds.
FOLD_BATCH = 256


class TimingTap:
    """Copies of a pool's task timings, for an exporter to take (``PoolCore.drain_tap``).

    ``waits`` and ``runs`` are guarded by the lock of the pool the tap is attached to.
    ``on_full`` is called, with that lock held, by every fold that leaves more than
    ``limit`` values waiting: it must only wake whoever drains (an ``Event.set``), so that
    memory stays bounded between two collections without the pool ever waiting on an exporter.
    """

    __slots__ = ("limit", "on_full", "runs", "waits")

    def __init__(self, limit: int, on_full: Callable[[], object]) -> None:
        self.limit = limit
        self.on_full = on_full
        self.waits: list[float] = []  # queue waits, seconds, not yet taken
        self.runs: list[float] = []  # run times, seconds, not yet taken


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
        "taps",
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
        # Exporters that copy every fold (a fork's child starts without any: their
        # drainers did not survive the fork).
        self.taps: tuple[TimingTap, ...] = ()

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
        """Moves the pending timings into the histograms (and copies them to the taps).
        Lock held."""
        if self.taps:
            for tap in self.taps:
                tap.waits += self.pending_waits
                tap.runs += self.pending_runs
                if len(tap.waits) > tap.limit:
                    tap.on_full()
        self.queue_wait.fold(self.pending_waits)
        self.run_time.fold(self.pending_runs)
        self.pending_waits.clear()
        self.pending_runs.clear()

    def _histograms(self) -> tuple[HistogramSnapshot, HistogramSnapshot]:
        """Queue-wait and run-time histograms with every timing so far. Lock held."""
        self._fold_timings()
        return self.queue_wait.snapshot(), self.run_time.snapshot()

    def _attach_tap(self, tap: TimingTap) -> None:
        """Copies every timing from now on to ``tap``. Lock held."""
        self._fold_timings()  # the timings so far are not the tap's
        self.taps = (*self.taps, tap)

    def _detach_tap(self, tap: TimingTap) -> tuple[list[float], list[float]]:
        """Stops copying to ``tap``; returns what it had not handed over yet (a fold
        first, so it misses no task counted before it was detached). Lock held."""
        taken = self._drain_tap(tap)
        self.taps = tuple(t for t in self.taps if t is not tap)
        return taken

    def _drain_tap(self, tap: TimingTap) -> tuple[list[float], list[float]]:
        """Takes ``tap``'s timings: every task counted so far. Lock held."""
        self._fold_timings()
        taken = tap.waits, tap.runs
        tap.waits, tap.runs = [], []
        return taken

    def _failure_list(self) -> list[TaskFailure]:
        return [] if self.failures is None else list(self.failures)
