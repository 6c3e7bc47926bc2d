"""The thread backend: the submit fast path, the idle stack, starting threads, resize.

How work moves (every decision under ``self.lock``):

1. ``submit`` hands the task to the most recently idle worker (LIFO, so the surplus threads
   at the bottom of the stack stay idle long enough to retire), else reserves a new thread
   for it if fewer than ``max_workers`` are counted, else appends it to the bounded FIFO
   ``queue``, else joins the line of waiting callers (``_admission``) or is rejected.
2. A worker that finishes a task reports it (``_dispatch``) and gets its next task, or goes
   idle on its own inbox.

Starting a thread (the thread that reserves a worker starts it or takes it back, on every
path):

1. ``_reserve`` counts the worker under the lock; ``_launch`` starts it after the lock is
   released (``start()`` waits for the new thread, and holding the lock that long would
   stall every worker). ``submit`` launches from a ``finally``, so an interrupt that lands
   between the two still starts the thread.
2. If ``start()`` raises (no thread can be started, or Ctrl-C while it waited for the new
   thread), ``_launch_failed`` takes the reservation back under the lock unless the thread
   already checked in, recovers the tasks it held (to an idle worker, to the front of the
   queue within its bound, or failed with the error) and lets the error propagate, as it
   would from the standard pool. A thread that did start after all finds ``taken_back`` set
   when it checks in and exits having run nothing; ``shutdown(wait=True)`` waits for it.
3. A pool left without any thread fails its queue with the error: no task waits for a
   thread that nobody will start.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from queue import SimpleQueue
from threading import get_ident
from time import perf_counter, sleep
from typing import Any

from ._admission import Overflow, Waiter
from ._config import Settings, check_order
from ._deadlines import Deadlines
from ._dispatch import Dispatch
from ._errors import SHUTDOWN_MESSAGE, PoolOverloaded
from ._failures import detached
from ._future import TrackedFuture
from ._items import EXIT, WAKE, WorkItem, settle_unstarted
from ._workers import Worker

__all__ = ["ThreadCore"]


def _gil_enabled() -> bool:
    is_enabled: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else is_enabled()


class ThreadCore(Dispatch):
    """The state shared by a pool's executor and its worker threads."""

    __slots__ = (
        "__weakref__",
        "initargs",
        "initializer",
        "owner",
        "peak_workers",
        "thread_number",
        "thread_prefix",
        "yield_gil",
    )

    def __init__(
        self,
        *,
        name: str,
        thread_prefix: str,
        min_workers: int,
        max_workers: int,
        settings: Settings,
        max_waiting: int | None,
        idle_timeout: float | None,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
    ) -> None:
        # Fixed at construction; read without the lock.
        self.thread_prefix = thread_prefix
        self.idle_timeout = idle_timeout
        self.initializer = initializer
        self.initargs = initargs
        # The GIL hand-over heuristics in submit() only help where there is a GIL.
        self.yield_gil = _gil_enabled()
        self._open_core(name, settings, max_waiting)
        # Everything below is guarded by self.lock.
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.idle: list[Worker] = []  # idle workers, most recently idle last
        self.workers: set[Worker] = set()  # threads that may still run (for joins, WAKE)
        self.nworkers = 0  # workers counted: not retired (<= len(workers))
        self.peak_workers = 0
        self.thread_number = 0  # the next thread's name suffix; never reused
        self.exit_sleepers: list[threading.Lock] = []  # shutdown(wait=True) callers
        self.exited: list[threading.Thread] = []
        self.owner: weakref.ref[Any] | None = None  # the executor; abandon() when it dies
        self.deadlines = Deadlines(name, self.expire_task, lambda: self.refusal is not None)

    # -- submitting -----------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Future[Any]:
        """Accepts a task or raises. ``timeout``: how long to wait for room, as
        ``submit_timeout`` says, or ``TRY_ONLY`` (see ``_admission.patience``)."""
        future: TrackedFuture[Any] = TrackedFuture()
        item = (future, fn, args, kwargs, perf_counter())
        main = get_ident() == self.main_ident
        if main:  # see PoolCore.guarded()
            outer, self.main_in_lock = self.main_in_lock, True
        lock = self.lock
        placed: Worker | Waiter | Overflow | bool = False
        convoy = False  # see the end of this method
        try:
            if not lock.acquire(False):
                self._contended(main and outer, "submit")
                convoy = self.yield_gil
            try:
                if self.refusal is not None:
                    raise self._refusal()
                idle = self.idle
                queue = self.queue
                if idle:
                    idle.pop().inbox.put(item)
                    self.active += 1
                    self.submitted += 1
                    placed = True
                elif self.nworkers >= self.max_workers and (
                    not self.capacity or len(queue) < self.capacity
                ):
                    queue.append(item)
                    self.submitted += 1
                    placed = True
                else:
                    placed = self._place(item, timeout)
                # Producers outpacing the workers (a bounded queue half full or more) must
                # not yield below: the workers need the GIL, not more handoffs.
                convoy = convoy and (not self.capacity or 2 * len(queue) < self.capacity)
            finally:
                lock.release()
        finally:
            if main:
                self.main_in_lock = outer
            if placed is not True and placed.__class__ is Worker:
                self._launch(placed)  # in a finally: an interrupt cannot strand it
        if placed is not True:  # off the common path: a new thread, a wait, a rejection
            if placed.__class__ is Waiter:  # (an AsyncWaiter is asubmit's to await)
                placed = self._await_room(placed, main)
            if placed.__class__ is Overflow:
                self._overflowed(placed)
            elif placed is False:
                if self.yield_gil:
                    # Rejected. A caller that retries at once spins in pure Python and keeps
                    # the GIL from the workers, whose progress is the only thing that makes
                    # room: on 3.14, four such producers let four workers finish 150 1-ms
                    # tasks/s, not 4,000.
                    sleep(0)
                raise PoolOverloaded(self.name, self.capacity)  # built outside the lock
        if convoy:
            # Break a lock convoy. Under the GIL, a thread that blocked on this lock gets it
            # back without the GIL and holds it while it waits for the GIL; the worker
            # holding the GIL then blocks on the lock in turn, and from there the two hand
            # over both on every task (measured on 3.11 with one worker: 0.6x the stdlib's
            # no-op throughput in half the runs). Yielding lets the worker run its critical
            # sections alone for a while.
            sleep(0)
        return future

    def _place(self, item: WorkItem, timeout: float | None) -> Worker | Waiter | Overflow | bool:
        """Where a task goes when no thread is idle and the fast path had no room. Lock held.

        Returns a reserved worker holding ``item`` (the caller launches it), a ``Waiter``
        in line for room, what the overflow policy asks of the caller, or False once a
        rejection is counted.
        """
        if self.nworkers < self.max_workers:
            worker = self._reserve(item)
            self.active += 1
            self.submitted += 1
            return worker
        return self._line_up(item, timeout)

    # -- starting threads -----------------------------------------------------------------

    def _reserve(self, first: WorkItem | None) -> Worker:
        """Counts a new worker, with ``first`` as its first task, or idle. Lock held."""
        worker = Worker(self, f"{self.thread_prefix}_{self.thread_number}", first)
        self.thread_number += 1
        self.workers.add(worker)
        self.nworkers += 1
        if self.nworkers > self.peak_workers:
            self.peak_workers = self.nworkers
        if first is None:
            worker.wait_timeout = self._idle_wait(self.nworkers)
            self.idle.append(worker)
        return worker

    def _launch(self, worker: Worker) -> None:
        """Starts a reserved worker's thread, or takes the reservation back and raises.
        Called without the lock."""
        try:
            worker.thread.start()
        except BaseException as error:
            self._launch_failed(worker, error)
            raise
        finally:
            worker.launched = True

    def _launch_all(self, workers: list[Worker]) -> None:
        """Launches every worker, even after one fails; then raises the first error."""
        first: BaseException | None = None
        for worker in workers:
            try:
                self._launch(worker)
            except BaseException as error:
                first = first or error
        if first is not None:
            raise first

    def _launch_failed(self, worker: Worker, error: BaseException) -> None:
        """Takes back a reservation whose ``start()`` raised; no accepted task is lost."""
        doomed: list[TrackedFuture[Any]] = []
        with self.guarded("submit"):
            if worker.checked_in:  # the thread runs after all: it is counted and works
                return
            worker.taken_back = True
            if isinstance(error, Exception):  # start() raises those before any thread
                self.workers.discard(worker)
            handed = self._reclaim(worker)
            self.active -= len(handed)
            doomed = self._recover(handed, error)
            self._wake_joiners()
        settle_unstarted(doomed, lambda: detached(error))

    def _recover(self, handed: list[WorkItem], error: BaseException) -> list[TrackedFuture[Any]]:
        """Finds another thread for tasks whose thread never started; returns the futures
        of those that must fail. Lock held; ``handed`` is no longer counted as active."""
        queue = self.queue
        requeue: list[WorkItem] = []
        doomed: list[WorkItem] = []
        for item in handed:
            if self.idle:
                self.idle.pop().inbox.put(item)
                self.active += 1
            elif self.nworkers and (
                not self.capacity or len(queue) + len(requeue) < self.capacity
            ):
                requeue.append(item)
            else:
                doomed.append(item)
        queue.extendleft(reversed(requeue))  # accepted before anything queued now
        if self.nworkers:
            return self._fail_items(doomed)
        # No thread is left to run the queue: fail it too, and the callers waiting for room
        # get the error as submit() would have raised it to them.
        self._refuse_waiters(lambda: detached(error))
        return self._unqueue(doomed)

    def start_min_workers(self) -> None:
        """Starts the ``min_workers`` threads that never retire."""
        with self.guarded("ThreadPoolExecutor"):
            reserved = [self._reserve(None) for _ in range(self.min_workers - self.nworkers)]
        self._launch_all(reserved)

    # -- control --------------------------------------------------------------------------

    def resize(self, min_workers: int | None, max_workers: int | None) -> None:
        """Changes the limits; the caller has validated each value on its own."""
        reserved: list[Worker] = []
        try:
            with self.guarded("resize"):
                if self.refusal is not None:
                    raise RuntimeError(f"cannot resize pool {self.name!r} after shutdown")
                low = self.min_workers if min_workers is None else min_workers
                high = self.max_workers if max_workers is None else max_workers
                check_order(low, high)
                self.min_workers, self.max_workers = low, high
                queue = self.queue
                while queue and self.nworkers < high:  # more room: start on what waits
                    reserved.append(self._reserve(queue.popleft()))
                    self.active += 1
                    if self.waiters:
                        self._admit_waiters()
                while self.nworkers < low:
                    reserved.append(self._reserve(None))
                # Surplus idle threads go now; busy ones when their task is done.
                self._retire_idle(keep=high)
                for worker in self.idle:  # their idle timeout may have changed
                    worker.inbox.put(WAKE)
        finally:
            self._launch_all(reserved)

    def _retire_idle(self, keep: int = 0) -> None:
        idle = self.idle
        while idle and self.nworkers > keep:
            idle.pop(0).inbox.put(EXIT)  # longest idle first
            self.nworkers -= 1

    def abandon(self) -> None:
        """The executor was garbage-collected: drain the queue, then let threads exit.

        Runs in a GC callback, in whatever thread triggered the collection, maybe one that
        holds the lock: so no lock here, only the request (see ``_pool``) and reentrant
        ``SimpleQueue.put``s that make idle workers look at the pool again.
        """
        if self.refusal is None:
            self.refusal = SHUTDOWN_MESSAGE
        for worker in list(self.workers):
            worker.inbox.put(WAKE)

    def _gauges(self) -> tuple[int, int, int, int, int]:
        return (
            self.nworkers,
            len(self.idle),
            self.min_workers,
            self.max_workers,
            self.peak_workers,
        )

    def threads(self) -> frozenset[threading.Thread]:
        """The pool's threads that have started and not yet left it."""
        with self.guarded("_threads"):
            return frozenset(w.thread for w in self.workers if w.thread.ident is not None)

    def after_fork_in_child(self) -> None:
        """Makes the pool usable in a forked child, whose only thread is the forker.

        The parent's threads do not exist here and its locks may be held by them, so the
        state starts afresh: new locks, no queue or waiters (the parent runs those tasks;
        running them here too would do their work twice) and counters from zero. If the
        forking thread is one of our workers it is adopted, busy or idle as it was.
        """
        self._reset_sync()
        self.deadlines.reset()  # its tasks were the parent's: the parent expires them
        adopted = self._worker_of(threading.current_thread())
        was_idle = adopted is not None and adopted in self.idle
        self.queue.clear()
        self.waiters.clear()
        self.exit_sleepers = []
        self.exited = []
        self.idle = [adopted] if adopted is not None and was_idle else []
        self.workers = set() if adopted is None else {adopted}
        self.nworkers = self.peak_workers = len(self.workers)
        self._reset_ledger()
        self.active = self.submitted = int(adopted is not None and not was_idle)
        if adopted is not None:
            adopted.inbox = SimpleQueue()
            adopted.joining = False
