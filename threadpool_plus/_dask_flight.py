"""The Dask backend's books: the tasks in flight, taking queued tasks into flight as room
frees up, counting what Dask is done with, deadlines and the waits of ``shutdown``.

This layer (``DaskFlight``, under ``DaskCore``) never calls the Dask client: everything
that holds the lock is here, so nothing can call the client while holding it (the
``_pool`` invariant). ``in_flight`` holds exactly the tasks handed (or being handed) to the
scheduler and not yet counted, so ``active == len(in_flight)`` plus the tasks run by their
callers (``overflow="caller_runs"``); the queue is non-empty only while ``in_flight`` is
full. A task is counted once Dask is done with it: completed, failed, or, when its future
was taken over first (a deadline, an interrupt, a shutdown), expired or cancelled
(``_count_taken``), as a thread pool counts a task when its thread is free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import monotonic, time
from typing import TYPE_CHECKING, Any

from ._admission import Overflow, Waiter
from ._dask_call import TIMING
from ._deadlines import Deadlines
from ._errors import deadline_passed
from ._failures import TaskFailure, describe
from ._future import TrackedFuture
from ._handle import TaskHandle
from ._items import WorkItem
from ._lean_future import sleep_until_released
from ._ledger import FOLD_BATCH
from ._pool import PoolCore
from ._task import Task, task_name

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskFlight", "InFlight", "decode", "forget_frames"]


class InFlight:
    """A task handed (or being handed) to the scheduler."""

    __slots__ = ("dask_future", "handle", "item", "name", "waited")

    def __init__(self, item: WorkItem) -> None:
        self.item: WorkItem | None = item  # None once settled
        self.name = task_name(item[1])
        self.waited = 0.0  # accepted -> handed to the scheduler, on the client
        # Set once submitted; cleared (under no lock: one plain store) before it is settled.
        self.dask_future: distributed.Future[Any] | None = None
        self.handle: TaskHandle | None = None


class DaskFlight(PoolCore):
    """The in-flight layer of ``DaskCore``; every field is guarded by the lock."""

    __slots__ = (
        "deadlines",  # the deadline watcher (its own lock)
        "in_flight",  # TrackedFuture -> InFlight, for the tasks handed to the scheduler
        "max_in_flight",  # fixed at construction
        "nthreads",  # the cluster's threads when constructed (the workers gauge)
        "peak",  # the most tasks in flight at once
        "sleepers",  # shutdown(wait=True) callers, woken when nothing is left in flight
    )

    def _open_flight(self, max_in_flight: int, nthreads: int) -> None:
        self.max_in_flight = max_in_flight
        self.nthreads = nthreads
        self.in_flight: dict[TrackedFuture[Any], InFlight] = {}
        self.peak = 0
        self.sleepers: list[threading.Lock] = []
        self.deadlines = Deadlines(self.name, self.expire_task, lambda: self.refusal is not None)

    def _place(self, item: WorkItem, timeout: float | None) -> InFlight | Waiter | Overflow | bool:
        """Where a new task goes: in flight (the caller sends it), the queue (True), the
        line of waiting callers, what the overflow policy asks, or False once a rejection
        is counted (see ``Admission._line_up``). Takes the lock; raises once closed."""
        with self.guarded("submit"):
            if self.refusal is not None:
                raise self._refusal()
            if len(self.in_flight) < self.max_in_flight:  # then the queue is empty
                self.submitted += 1
                return self._hand(item)
            if not self.capacity or len(self.queue) < self.capacity:
                self.queue.append(item)
                self.submitted += 1
                return True
            return self._line_up(item, timeout)

    def _hand(self, item: WorkItem) -> InFlight:
        """Puts a task in flight: the caller sends it once the lock is released. Lock held."""
        entry = InFlight(item)
        self.in_flight[item[0]] = entry
        self.active += 1
        if len(self.in_flight) > self.peak:
            self.peak = len(self.in_flight)
        return entry

    def _refill(self) -> list[InFlight]:
        """Takes queued tasks into flight while there is room, admitting waiting callers
        into the room that leaves in the queue; wakes ``shutdown`` once nothing is left.
        Returns what the caller must send. Lock held."""
        handed = []
        queue = self.queue
        while queue and len(self.in_flight) < self.max_in_flight:
            handed.append(self._hand(queue.popleft()))
            if self.waiters:
                self._admit_waiters()
        if not self.in_flight and not queue:
            for sleeper in self.sleepers:
                sleeper.release()
            self.sleepers.clear()
            if self.refusal is not None:  # closed and done: the watcher may end now (it
                self.deadlines.wake()  # never takes this lock while holding its own)
        return handed

    def _forget(self, future: TrackedFuture[Any]) -> None:
        """Takes a settled task out of flight. Lock held."""
        del self.in_flight[future]
        self.active -= 1

    def _count(
        self,
        future: TrackedFuture[Any],
        waited: float,
        ran: float,
        status: str,
        failure: TaskFailure | None,
        how: str | None = None,
    ) -> tuple[str | None, list[InFlight]]:
        """Counts a task Dask is done with (or that was never sent): as its takeover says
        (``how``, read here unless given, and returned), else by its ``status`` (and
        ``failure``). Returns ``how`` and the tasks now in flight in its place, for the
        caller to send. Takes the lock."""
        with self.lock:
            self._forget(future)
            how = how or future._taken_by
            if how is not None:
                self._count_taken(how)  # expired, or cancelled by an interrupt or shutdown
            elif status == "finished":
                self.completed += 1
                self.pending_waits.append(waited)
                self.pending_runs.append(ran)
                if len(self.pending_waits) >= FOLD_BATCH:
                    self._fold_timings()
            elif failure is not None:
                self._record_failure(failure, waited, ran)
            else:  # cancelled on the cluster by someone else (client.cancel, a timeout)
                self.cancelled += 1
            return how, self._refill()

    def expire_task(self, future: TrackedFuture[Any], task: Task) -> None:
        """The deadline watcher, at ``task``'s deadline: a queued task leaves the queue for
        ``expired``; one in flight is counted ``overrunning`` until its Dask future is
        released (its cancellation on the cluster is requested). Its future fails with
        ``TaskTimeout`` either way."""
        with self.guarded("deadline"):
            if not future.expire(deadline_passed(self.name, task.name)):
                return  # finished, cancelled, or expired before it was sent
            if self._unqueue_future(future):
                self.expired += 1
                if self.waiters:
                    self._admit_waiters()
            elif future in self.in_flight:
                self.overrunning += 1  # until it is settled (_count_taken)
            # else counted as it finished: it stays counted so (see _takeover).
        future.run_callbacks()
        task.cancel_task()  # -> _cancel_remote

    def _take_late(self) -> list[WorkItem]:
        """A shutdown's timeout ran out: empties the queue (counted cancelled)."""
        with self.guarded("shutdown"):
            return self._take_queue()

    def _still_in_flight(self) -> list[tuple[TrackedFuture[Any], InFlight]]:
        """The tasks in flight whose futures are not done yet. Takes the lock."""
        with self.guarded("shutdown"):
            return [(f, e) for f, e in self.in_flight.items() if not f.done()]

    def _close(self, cancel: bool, message: str) -> list[WorkItem]:
        doomed = super()._close(cancel, message)
        self.deadlines.wake()  # to end once nothing is left to watch
        return doomed

    def _retire_idle(self, keep: int = 0) -> None:
        pass  # no runner of its own to retire

    def _wait_idle(self, deadline: float | None) -> bool:
        """Returns True once nothing is queued or in flight, False at ``deadline``."""
        while True:
            with self.guarded("shutdown"):
                if not self.in_flight and not self.queue:
                    return True
                sleeper = threading.Lock()
                sleeper.acquire()
                self.sleepers.append(sleeper)
            timeout = None if deadline is None else deadline - monotonic()
            if (timeout is not None and timeout <= 0) or not sleep_until_released(
                sleeper, timeout
            ):
                with self.guarded("shutdown"):
                    if sleeper in self.sleepers:
                        self.sleepers.remove(sleeper)
                return False

    def _gauges(self) -> tuple[int, int, int, int, int]:
        in_flight = len(self.in_flight)
        return (
            self.nthreads,
            max(0, self.nthreads - in_flight),
            0,
            self.max_in_flight,
            self.peak,
        )


def forget_frames(error: BaseException) -> None:
    """Drops the tracebacks of ``error`` and its chain (their text is in the record)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        exc = stack.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.__traceback__ = None
        stack += [exc.__cause__, exc.__context__]


def _without_trampoline(traceback: Any) -> Any:
    """A remote traceback from the task's own frame on: the reader wants ``fn``'s frames,
    not ``_dask_call.call``'s (the worker may keep the file at another path)."""
    code = traceback.tb_frame.f_code
    if code.co_name == "call" and code.co_filename.endswith("_dask_call.py"):
        return traceback.tb_next or traceback
    return traceback


def decode(
    fn: Callable[..., Any], status: str, outcome: Any
) -> tuple[Any, float, BaseException | None, TaskFailure | None]:
    """What Dask's outcome of a task means: ``(result, seconds it ran, None, None)`` once
    finished (``outcome`` is the trampoline's ``(result, seconds)``); ``(None, seconds,
    error, record)`` once it raised or its worker died (``outcome`` is Dask's ``(type,
    exception, traceback)``); ``(None, 0, None, None)`` once cancelled."""
    if status == "finished":
        result, ran = outcome
        return result, ran, None, None
    if status == "cancelled":
        return None, 0.0, None, None
    _, error, traceback = outcome
    if traceback is not None:
        error = error.with_traceback(_without_trampoline(traceback))
    timing = vars(error).pop(TIMING, None) if hasattr(error, "__dict__") else None
    # KilledWorker and its like come with no timing from a worker.
    started_at, ran, where = timing or (time(), 0.0, "dask")
    return None, ran, error, describe(fn, error, where, started_at, ran)
