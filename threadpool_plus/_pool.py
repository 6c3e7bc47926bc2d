"""The backend-neutral core: the lock, the pool's state, the queue and its bound, shutdown.

How accepted work runs is a backend's business (``_threads.ThreadCore`` runs it on threads);
what the pool promises is here and in the layers it is built on: ``Admission`` (waiting for
room) on ``Ledger`` (counters and records).

Invariants:

- One lock, ``self.lock``, guards every field of the core, its mixins and its backend. It
  is never held while user code runs, while a thread starts or while a future's callbacks
  run. Lock order: the pool lock, then a future's lock, never the reverse.
- ``state`` only moves forward (``_advance``): OPEN -> DRAINING (no new work; accepted
  work runs) -> STOPPING (the queue was cancelled) -> BROKEN (an initializer failed) ->
  TERMINATED (no worker left). ``refusal`` is the admission gate that goes with it: the
  message new work is refused with, ``None`` while open.
- Two callers must not block on the lock, because the thread they interrupt may hold it: a
  garbage-collector callback and a signal handler that interrupted the main thread inside a
  critical section. They only *request* the move to DRAINING, by setting ``refusal`` (a
  plain store that only ever replaces ``None``) and waking someone who takes the lock.
- Every accepted task is settled exactly once: run, cancelled or failed (``_items``).
- ``submitted == completed + failed + cancelled + expired + active + queued`` whenever the
  lock is free. ``overrunning`` counts the ``active`` tasks whose deadline passed.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any

from ._admission import Admission, Overflow
from ._caller import run_in_caller
from ._config import Settings
from ._errors import BROKEN_MESSAGE, SHUTDOWN_MESSAGE, BrokenThreadPool
from ._failures import TaskFailure
from ._future import TrackedFuture
from ._histogram import HistogramSnapshot
from ._items import WorkItem, settle_unstarted
from ._ledger import FOLD_BATCH, TimingTap
from ._report import ShutdownReport, dropped
from ._stats import PoolStats
from ._takeover import DEADLINE, INTERRUPT

__all__ = ["PoolCore", "State"]


class State(enum.IntEnum):
    """Where a pool is in its life; it only moves to a larger value."""

    OPEN = 0
    DRAINING = 1
    STOPPING = 2
    BROKEN = 3
    TERMINATED = 4


class PoolCore(Admission):
    """State, admission and accounting shared by every backend."""

    __slots__ = (
        "active",
        "broken",
        "capacity",
        "lock",
        "main_ident",
        "main_in_lock",
        "name",
        "on_task_error",  # called with each TaskFailure; set by the backend, fixed
        "queue",
        "refusal",
        "shut_down",
        "state",
    )

    if TYPE_CHECKING:  # the type of a slot above
        on_task_error: Callable[[TaskFailure], object] | None

    def _open_core(self, name: str, settings: Settings, max_waiting: int | None) -> None:
        """Sets up every layer up to this one, from the validated settings."""
        self.name = name  # fixed at construction; read without the lock
        self.capacity = settings.capacity  # likewise; 0 = unbounded
        self.on_task_error = settings.on_task_error  # likewise
        self._open_ledger(settings.failure_history, settings.histogram_buckets)
        self._reset_sync()
        # Guarded by self.lock:
        self.state = State.OPEN
        self.refusal: str | None = None  # why new work is refused; see the module notes
        self.broken = False  # an initializer failed: refusals are BrokenThreadPool
        self.shut_down = False  # shutdown was asked for (the standard pool's _shutdown)
        self.queue: deque[WorkItem] = deque()  # accepted, not started; FIFO
        self.active = 0  # tasks handed to a runner and not yet counted as done
        self._open_admission(max_waiting, settings.overflow)

    def _reset_sync(self) -> None:
        self.lock = threading.Lock()
        # Written only by the main thread, so that a signal handler running on top of it
        # can tell: it is inside (or entering) a critical section; it waits for room.
        self.main_in_lock = False
        self.main_waiting = False
        self.main_ident = threading.main_thread().ident

    # -- critical sections ----------------------------------------------------------------

    @contextmanager
    def guarded(self, operation: str) -> Iterator[None]:
        """Holds the lock, telling a signal handler when the main thread holds it.

        ``main_in_lock`` is set *before* acquiring, so there is no instant at which the main
        thread holds the lock unflagged; it is restored, not cleared, on the way out,
        because a signal handler may use the pool on top of an outer section.
        """
        main = get_ident() == self.main_ident
        if main:
            outer, self.main_in_lock = self.main_in_lock, True
        try:
            if not self.lock.acquire(False):
                self._contended(main and outer, operation)
            try:
                yield
            finally:
                self.lock.release()
        finally:
            if main:
                self.main_in_lock = outer

    def _contended(self, reentered: bool, operation: str) -> None:
        """Waits for a lock that someone holds, unless that someone is the code a signal
        handler interrupted (``reentered``): waiting then would wait forever."""
        if reentered:
            raise RuntimeError(
                f"{operation}() of pool {self.name!r} was called from a signal handler that "
                "interrupted the pool while it held its lock; only shutdown() is safe there"
            )
        self.lock.acquire()

    def _advance(self, state: State, message: str) -> None:
        """Moves the state forward (never back) and closes admission. Lock held."""
        if state > self.state:
            self.state = state
        if self.refusal is None:
            self.refusal = message

    def _refusal(self) -> BaseException:
        if self.broken:
            return BrokenThreadPool(BROKEN_MESSAGE)
        return RuntimeError(self.refusal or SHUTDOWN_MESSAGE)

    # -- what a backend provides ------------------------------------------------------------

    def _retire_idle(self, keep: int = 0) -> None:
        """Lets idle runners go until ``keep`` remain. Lock held."""
        raise NotImplementedError

    def _wait_for_workers(self, deadline: float | None = None) -> bool:
        """Returns True once every runner has exited (but the caller's own), False at
        ``deadline`` (a ``time.monotonic()`` value). No lock held."""
        raise NotImplementedError

    def _give_up(self) -> tuple[list[WorkItem], tuple[str, ...]]:
        """A shutdown's timeout ran out: takes what is still queued (cancelled) and requests
        the cancellation of what still runs; returns both (the running by name)."""
        raise NotImplementedError

    def _gauges(self) -> tuple[int, int, int, int, int]:
        """(workers, idle_workers, min_workers, max_workers, peak_workers). Lock held."""
        raise NotImplementedError

    def _stop_running(self, cancel: bool) -> tuple[str, ...]:
        """Called by ``shutdown`` without the lock once admission is closed. A backend that
        can stop running tasks (Dask cancels them on the cluster) does so when ``cancel``
        and returns their names; threads let running tasks finish (the default)."""
        return ()

    # -- shutdown -------------------------------------------------------------------------

    def shutdown(
        self,
        *,
        wait: bool,
        cancel: bool,
        message: str = SHUTDOWN_MESSAGE,
        timeout: float | None = None,
    ) -> ShutdownReport:
        """Stops accepting work; cancels the queue if ``cancel``; waits if ``wait``, for at
        most ``timeout`` seconds: then it cancels what is still queued and requests the
        cancellation of what still runs (``_give_up``). Returns what it dropped.

        A done-callback that raises while the queue is cancelled stops nothing: every
        future is settled and the threads are waited for, then its exception propagates.
        """
        if get_ident() == self.main_ident and (self.main_in_lock or self.main_waiting):
            # A signal handler that interrupted this pool's own code in the main thread.
            return self._shutdown_from_signal_handler(cancel, message)
        deadline = None if timeout is None else monotonic() + timeout
        with self.guarded("shutdown"):
            doomed = self._close(cancel, message)
        error = settle_unstarted([item[0] for item in doomed], None)
        report = ShutdownReport(dropped=dropped(doomed), running=self._stop_running(cancel))
        if wait and not self._wait_for_workers(deadline):
            late, running = self._give_up()
            error = settle_unstarted([item[0] for item in late], None) or error
            report = ShutdownReport(True, report.dropped + dropped(late), report.running + running)
        if error is not None:
            raise error
        return report

    def _shutdown_from_signal_handler(self, cancel: bool, message: str) -> ShutdownReport:
        """A signal handler running on top of the main thread inside a critical section or
        a wait for room: blocking on the lock could deadlock, and so could waiting for the
        threads (whose work may need what the interrupted code was about to do)."""
        if self.lock.acquire(blocking=False):  # the interrupted code was not holding it
            try:
                doomed = self._close(cancel, message)
            finally:
                self.lock.release()
            error = settle_unstarted([item[0] for item in doomed], None)
            if error is not None:
                raise error
            return ShutdownReport(dropped=dropped(doomed))
        # Held, perhaps by the code we interrupted. Refuse new work now (a section that
        # already passed its check just ran a little earlier than this shutdown) and let
        # another thread wait for the lock to do the rest.
        if self.refusal is None:
            self.refusal = message
        self.shut_down = True  # like refusal: a plain store, read without the lock
        threading.Thread(
            target=self.shutdown,
            kwargs={"wait": False, "cancel": cancel, "message": message},
            name=f"{self.name}-shutdown",
            daemon=True,
        ).start()
        return ShutdownReport()  # what it drops, that thread drops

    def _close(self, cancel: bool, message: str) -> list[WorkItem]:
        """Closes admission; returns the queue, emptied, if ``cancel``. Lock held."""
        self.shut_down = True
        self._advance(State.STOPPING if cancel else State.DRAINING, message)
        self._refuse_waiters()
        doomed = self._take_queue() if cancel else []
        self._retire_idle()
        return doomed

    def _overflowed(self, overflow: Overflow) -> None:
        """What the overflow policy left to the caller, without the lock: cancel the task
        ``"drop_oldest"`` dropped, or run its own task here (``"caller_runs"``)."""
        if overflow.dropped is not None:
            error = settle_unstarted([overflow.dropped[0]], None)
            if error is not None:
                raise error
        if overflow.run is not None:
            run_in_caller(self, overflow.run)

    def task_ran_by_caller(
        self, failure: TaskFailure | None, waited: float, ran: float, expired: bool = False
    ) -> None:
        """Counts a task its submitting thread ran (``overflow="caller_runs"``): completed,
        failed (``failure``) or expired."""
        with self.lock:
            self.active -= 1
            self.caller_ran += 1
            if expired:
                self.expired += 1
            elif failure is not None:
                self._record_failure(failure, waited, ran)
            else:
                self.completed += 1
                self.pending_waits.append(waited)
                self.pending_runs.append(ran)
                if len(self.pending_waits) >= FOLD_BATCH:
                    self._fold_timings()

    def _count_taken(self, how: str) -> None:
        """Counts a task whose future was taken over (``_takeover``) once its runner is
        done with it. Lock held."""
        if how == INTERRUPT:
            self.cancelled += 1
        else:
            self.expired += 1
            if how == DEADLINE:  # the watcher counted it overrunning
                self.overrunning -= 1

    def _unqueue_future(self, future: TrackedFuture[Any]) -> bool:
        """Takes ``future``'s task out of the queue; False if not there. Lock held."""
        queue = self.queue
        for index, item in enumerate(queue):
            if item[0] is future:
                del queue[index]
                return True
        return False

    def _accept_for_caller(self) -> None:
        """Counts a task its caller will run itself (``overflow="caller_runs"``): accepted,
        and active until the caller reports it. Lock held."""
        self.submitted += 1
        self.active += 1

    def _take_queue(self) -> list[WorkItem]:
        """Empties the queue; counts its tasks as cancelled (none of them ran, whatever
        their futures say). Lock held."""
        doomed = list(self.queue)
        self.queue.clear()
        self.cancelled += len(doomed)
        return doomed

    # -- reading --------------------------------------------------------------------------

    def _stats(self) -> PoolStats:
        workers, idle, low, high, peak = self._gauges()
        return PoolStats(
            workers=workers,
            idle_workers=idle,
            active=self.active,
            queued=len(self.queue),
            queue_capacity=self.capacity,
            min_workers=low,
            max_workers=high,
            peak_workers=peak,
            submitted=self.submitted,
            completed=self.completed,
            failed=self.failed,
            cancelled=self.cancelled,
            rejected=self.rejected,
            expired=self.expired,
            overrunning=self.overrunning,
            waiting_submitters=len(self.waiters),
            dropped=self.dropped,
            caller_ran=self.caller_ran,
        )

    def snapshot(self) -> PoolStats:
        """One consistent ``PoolStats``."""
        with self.guarded("stats"):
            return self._stats()

    def metrics(self) -> tuple[PoolStats, HistogramSnapshot, HistogramSnapshot]:
        """Stats, queue-wait and run-time histograms, all from one instant."""
        with self.guarded("stats"):
            return (self._stats(), *self._histograms())

    def attach_tap(self, tap: TimingTap) -> None:
        """Copies the timings of every task counted from now on to ``tap``."""
        with self.guarded("metrics"):
            self._attach_tap(tap)

    def detach_tap(self, tap: TimingTap) -> tuple[list[float], list[float]]:
        """Stops copying to ``tap``; returns the timings it had not handed over yet."""
        with self.guarded("metrics"):
            return self._detach_tap(tap)

    def drain_tap(self, tap: TimingTap) -> tuple[list[float], list[float]]:
        """Takes ``tap``'s queue waits and run times: every task counted so far."""
        with self.guarded("metrics"):
            return self._drain_tap(tap)

    def recent_failures(self) -> list[TaskFailure]:
        with self.guarded("recent_failures"):
            return self._failure_list()

    def limits(self) -> tuple[int, int]:
        with self.guarded("_max_workers"):
            _, _, low, high, _ = self._gauges()
            return low, high
