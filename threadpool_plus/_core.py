"""The pool's shared state: one lock and everything it guards.

``PoolCore`` is what the worker threads hold; the public ``ThreadPoolExecutor`` is a thin
shell around it. Keeping them apart lets a pool that the user dropped without
``shutdown()`` be garbage-collected while its threads drain the queue and exit.

How work moves (every decision under ``self.lock``):

1. ``submit`` hands the task to the most recently idle worker (LIFO, so the surplus
   threads at the bottom of the stack stay idle long enough to retire), else reserves a
   new thread for it if fewer than ``max_workers`` are alive (and starts it once the lock
   is released), else appends it to the bounded FIFO ``queue``, else waits for room on
   ``not_full`` as the caller's timeout allows.
2. A worker that finishes a task counts it, then takes the next queued task or pushes
   itself onto the idle stack, *before* it resolves the task's future. So ``stats()``
   already counts a task when its future resolves, and a ``submit`` made right after
   ``result()`` returns finds this worker idle instead of starting another thread.
3. An idle worker blocks on its own ``SimpleQueue`` inbox. A task arrives there, or
   ``EXIT`` (it has been retired: the sender already uncounted it), or ``WAKE`` (look at
   the pool again: it may have shrunk, closed or been dropped).

Two callers must never block on the lock, because the thread they interrupt may hold
it: a garbage-collector callback (``abandon``: it stores a flag and puts ``WAKE`` into
every inbox, and ``SimpleQueue.put`` is reentrant) and a signal handler that interrupted
a critical section of the main thread (``shutdown``: it tries the lock, and if that
fails refuses new work with a flag and lets a helper thread wait for the lock).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from queue import SimpleQueue
from threading import get_ident
from time import monotonic, perf_counter, sleep
from typing import Any

from ._config import check_order
from ._errors import BROKEN_MESSAGE, SHUTDOWN_MESSAGE, BrokenThreadPool, PoolOverloaded
from ._failures import TaskFailure, logger
from ._future import TrackedFuture
from ._histogram import Histogram, HistogramSnapshot
from ._stats import PoolStats
from ._workers import EXIT, FAILED, WAKE, Message, Worker, WorkItem

__all__ = ["PoolCore"]

# Task timings kept before they are folded into the histograms: large enough that the
# sort amortises, small enough that a fold holds the lock for tens of microseconds.
_FOLD_BATCH = 256


class PoolCore:
    """The state shared by a pool's executor and its worker threads."""

    def __init__(
        self,
        *,
        name: str,
        thread_prefix: str,
        min_workers: int,
        max_workers: int,
        capacity: int,
        idle_timeout: float | None,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        failure_history: int,
        on_task_error: Callable[[TaskFailure], object] | None,
        histogram_buckets: tuple[float, ...],
    ) -> None:
        # Fixed at construction; read without the lock.
        self.name = name
        self.thread_prefix = thread_prefix
        self.capacity = capacity  # 0 = unbounded
        self.idle_timeout = idle_timeout
        self.initializer = initializer
        self.initargs = initargs
        self.on_task_error = on_task_error
        self._reset_sync()
        # Everything below is guarded by self.lock.
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.queue: deque[WorkItem] = deque()  # accepted, not started; FIFO
        self.idle: list[Worker] = []  # idle workers, most recently idle last
        self.workers: set[Worker] = set()  # threads not yet exited (for join and WAKE)
        self.nworkers = 0  # workers that have not been retired (<= len(workers))
        self.peak_workers = 0
        self.active = 0  # tasks handed to a worker and not yet counted as done
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.rejected = 0
        # The newest failures, oldest first; None when failure_history is 0.
        self.failures: deque[TaskFailure] | None = (
            deque(maxlen=failure_history) if failure_history else None
        )
        self.queue_wait = Histogram(histogram_buckets)  # accepted -> started, seconds
        self.run_time = Histogram(histogram_buckets)  # started -> returned or raised
        self.pending_waits: list[float] = []  # observations not yet in queue_wait
        self.pending_runs: list[float] = []  # observations not yet in run_time
        self.waiting = 0  # submitters blocked on not_full
        self.thread_number = 0  # the next thread's name suffix; never reused
        self.closed: str | None = None  # why new work is refused (None: open)
        self.broken: str | None = None  # set when an initializer failed
        # Written only by the main thread: True while it is inside (or entering) a
        # critical section, so a signal handler running on top of it can tell.
        self.main_in_lock = False
        self.main_ident = threading.main_thread().ident
        self.owner: weakref.ref[Any] | None = None  # the executor; abandon() when it dies

    def _reset_sync(self) -> None:
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)

    # -- submitting ---------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Future[Any]:
        """Accepts a task or raises; ``timeout`` is how long to wait for room."""
        future: TrackedFuture[Any] = TrackedFuture()
        item = (future, fn, args, kwargs, perf_counter())
        main = get_ident() == self.main_ident
        if main:  # see guarded()
            outer, self.main_in_lock = self.main_in_lock, True
        lock = self.lock
        placed: Worker | bool = False
        convoy = False  # see the end of this method
        try:
            if not lock.acquire(False):
                if main and outer:
                    raise RuntimeError(self._reentry_message("submit"))
                lock.acquire()
                convoy = True
            try:
                if self.closed is not None:
                    raise self._refusal()
                # The common cases of _place, inlined: this runs on every submit.
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
                    placed = self._place(item)
                    if placed is False:
                        placed = self._wait_for_room(item, timeout)
                # Producers outpacing the workers (a bounded queue half full or more) must
                # not yield below: the workers need the GIL, not more handoffs.
                convoy = convoy and (not self.capacity or 2 * len(queue) < self.capacity)
            finally:
                lock.release()
        finally:
            if main:
                self.main_in_lock = outer
        if convoy or placed is False:
            # Yield the GIL, with the lock released, in two cases:
            # - Break a lock convoy. Under the GIL, a thread that blocked on this lock gets
            #   it back without the GIL and holds it while it waits for the GIL; the
            #   worker holding the GIL then blocks on the lock in turn, and from there the
            #   two hand over both on every task (measured on 3.11 with one worker: 0.6x
            #   the stdlib's no-op throughput in half the runs). Yielding lets the worker
            #   run its critical sections alone for a while.
            # - Rejected. A caller that retries at once spins in pure Python and keeps
            #   the GIL from the workers, whose progress is the only thing that makes
            #   room: on 3.14, four such producers let four workers finish 150 1-ms
            #   tasks/s, not 4,000.
            sleep(0)
        if placed is False:
            raise PoolOverloaded(self.name, self.capacity)  # built outside the lock
        if placed is not True:
            self._launch(placed)
        return future

    def _place(self, item: WorkItem) -> Worker | bool:
        """Hands ``item`` to a worker or queues it. Lock held.

        Returns False if there is no room, True if placed, or a new worker that holds
        ``item`` and that the caller must ``_launch`` once it has released the lock.
        """
        idle = self.idle
        placed: Worker | bool = True
        if idle:
            idle.pop().inbox.put(item)
            self.active += 1
        elif self.nworkers < self.max_workers:
            placed = self._reserve(item)
            self.active += 1
        elif not self.capacity or len(self.queue) < self.capacity:
            self.queue.append(item)
        else:
            return False
        self.submitted += 1
        return placed

    def _wait_for_room(self, item: WorkItem, timeout: float | None) -> Worker | bool:
        """Waits on ``not_full`` until ``item`` is placed, the pool closes or time runs out;
        returns as ``_place`` does, False once the rejection is counted."""
        if timeout != 0:
            deadline = None if timeout is None else monotonic() + timeout
            self.waiting += 1
            try:
                while True:
                    self.not_full.wait(None if deadline is None else deadline - monotonic())
                    if self.closed is not None:
                        raise self._refusal()
                    placed = self._place(item)
                    if placed is not False:
                        return placed  # True or a Worker
                    if deadline is not None and monotonic() >= deadline:
                        break
            finally:
                self.waiting -= 1
        self.rejected += 1
        return False

    def _refusal(self) -> BaseException:
        if self.broken is not None:
            return BrokenThreadPool(self.broken)
        return RuntimeError(self.closed)

    # -- workers ------------------------------------------------------------------------

    def _reserve(self, first: WorkItem | None) -> Worker:
        """Counts a new worker, with ``first`` as its first task or idle. Lock held.

        The thread is started by ``_launch`` after the lock is released: ``start()``
        waits for the new thread to run, and holding the lock that long would stall
        every worker that reports a finished task.
        """
        number = self.thread_number
        self.thread_number += 1
        worker = Worker(self, f"{self.thread_prefix}_{number}", first)
        self.workers.add(worker)
        self.nworkers += 1
        if self.nworkers > self.peak_workers:
            self.peak_workers = self.nworkers
        if first is None:
            worker.wait_timeout = self._idle_wait(self.nworkers)
            self.idle.append(worker)
        return worker

    def _launch(self, worker: Worker) -> None:
        """Starts a reserved worker's thread. Called without the lock."""
        try:
            worker.thread.start()
        except BaseException as exc:
            self._launch_failed(worker, exc)
        finally:
            worker.launched.set()

    def _launch_failed(self, worker: Worker, error: BaseException) -> None:
        """Undoes a reservation whose thread did not start, losing no accepted task."""
        logger.error(
            "pool %r could not start a thread",
            self.name,
            exc_info=True,
            extra={"pool": self.name, "worker": worker.thread.name},
        )
        with self.lock:
            self.workers.discard(worker)
            handed = self._reclaim(worker)
            if handed and self.nworkers > 0:  # another thread will run them
                self.active -= len(handed)
                self.queue.extendleft(reversed(handed))
                return
            doomed = self._fail_unstarted(handed, [])
        for future in doomed:
            future.set_exception(error)

    def _reclaim(self, worker: Worker) -> list[WorkItem]:
        """Uncounts a worker that will run nothing more; returns the tasks it held."""
        handed = [] if worker.first is None else [worker.first]
        worker.first = None
        retired = False  # already uncounted by whoever sent EXIT
        while not worker.inbox.empty():
            message = worker.inbox.get_nowait()
            if isinstance(message, tuple):
                handed.append(message)
            elif message is EXIT:
                retired = True
        if worker in self.idle:
            self.idle.remove(worker)
        if not retired:
            self.nworkers -= 1
        return handed

    def _fail_unstarted(
        self, handed: list[WorkItem], queued: list[WorkItem]
    ) -> list[TrackedFuture[Any]]:
        """Counts tasks that will never run as failed (or cancelled, if the caller
        cancelled them); returns the futures to fail once the lock is released."""
        self.active -= len(handed)
        doomed: list[TrackedFuture[Any]] = []
        for future, *_ in handed + queued:
            # No user code runs here: set_running_or_notify_cancel only wakes waiters.
            if future.set_running_or_notify_cancel():
                doomed.append(future)
                self.failed += 1
            else:
                self.cancelled += 1
        return doomed

    def start_min_workers(self) -> None:
        """Starts the ``min_workers`` threads that never retire."""
        with self.guarded("ThreadPoolExecutor"):
            reserved = [self._reserve(None) for _ in range(self.min_workers - self.nworkers)]
        for worker in reserved:
            self._launch(worker)

    def _idle_wait(self, nworkers: int) -> float | None:
        # Only threads above min_workers may time out; the others wait for good.
        return self.idle_timeout if nworkers > self.min_workers else None

    def task_completed(self, worker: Worker, waited: float, ran: float) -> Message:
        """Counts a task that returned (``waited`` and ``ran`` in seconds); returns the
        worker's next task, ``None`` (now idle) or ``EXIT``.

        The hot path: one lock round trip, and when work is queued the finished task's
        ``active`` slot passes straight to the next one.
        """
        with self.lock:
            self.completed += 1
            waits = self.pending_waits  # folded into the histograms in batches
            waits.append(waited)
            self.pending_runs.append(ran)
            if len(waits) >= _FOLD_BATCH:
                self._fold_timings()
            queue = self.queue
            if queue and self.nworkers <= self.max_workers:
                if self.waiting:
                    self.not_full.notify()
                return queue.popleft()
            self.active -= 1
            return self._next_task(worker)

    def task_done(
        self,
        worker: Worker,
        outcome: int,
        waited: float = 0.0,
        ran: float = 0.0,
        failure: TaskFailure | None = None,
    ) -> Message:
        """``task_completed`` for a task that ``FAILED`` or was ``CANCELLED``."""
        with self.lock:
            self.active -= 1
            if outcome == FAILED:
                self.failed += 1
                if self.failures is not None and failure is not None:
                    self.failures.append(failure)
                self.pending_waits.append(waited)
                self.pending_runs.append(ran)
                if len(self.pending_waits) >= _FOLD_BATCH:
                    self._fold_timings()
            else:
                self.cancelled += 1
            return self._next_task(worker)

    def _next_task(self, worker: Worker) -> Message:
        """What a worker that just finished a task does next. Lock held; the finished
        task is no longer counted as active."""
        if self.nworkers > self.max_workers:  # resize() shrank the pool
            self.nworkers -= 1
            return EXIT
        queue = self.queue
        if queue:
            self.active += 1
            if self.waiting:
                self.not_full.notify()
            return queue.popleft()
        if self.closed is not None:
            self.nworkers -= 1
            return EXIT
        self.idle.append(worker)
        worker.wait_timeout = self._idle_wait(self.nworkers)
        return None

    def recheck(self, worker: Worker, timed_out: bool) -> Message:
        """Called by an idle worker woken by ``WAKE`` or its timeout."""
        with self.lock:
            idle = self.idle
            if worker not in idle:
                # Someone took this worker off the stack after its wait ended; they put
                # its message in the inbox before releasing the lock, so it is there.
                while (message := worker.inbox.get_nowait()) is WAKE:
                    pass
                return message
            if (
                self.closed is not None
                or self.nworkers > self.max_workers
                or (timed_out and self.nworkers > self.min_workers)
            ):
                idle.remove(worker)
                self.nworkers -= 1
                return EXIT
            worker.wait_timeout = self._idle_wait(self.nworkers)
            return None

    def forget(self, worker: Worker) -> None:
        """Called by a worker thread as it exits."""
        with self.lock:
            self.workers.discard(worker)

    def initializer_failed(self, worker: Worker) -> None:
        """Breaks the pool: every task not started fails with ``BrokenThreadPool``."""
        with self.lock:
            self.broken = BROKEN_MESSAGE
            if self.closed is None:
                self.closed = BROKEN_MESSAGE
            handed = self._reclaim(worker)
            queued = list(self.queue)
            self.queue.clear()
            doomed = self._fail_unstarted(handed, queued)
            self._retire_idle()
            if self.waiting:
                self.not_full.notify_all()
        for future in doomed:
            future.set_exception(BrokenThreadPool(BROKEN_MESSAGE))

    def _retire_idle(self, keep: int = 0) -> None:
        """Retires idle workers, longest idle first, until ``keep`` threads remain."""
        idle = self.idle
        while idle and self.nworkers > keep:
            idle.pop(0).inbox.put(EXIT)
            self.nworkers -= 1

    # -- control ------------------------------------------------------------------------

    @contextmanager
    def guarded(self, operation: str) -> Iterator[None]:
        """Holds the lock, telling a signal handler when the main thread holds it.

        ``main_in_lock`` is set *before* acquiring, so there is no instant at which the
        main thread holds the lock unflagged; it is restored, not cleared, on the way
        out, because a signal handler may use the pool on top of an outer section. Such
        a handler gets ``RuntimeError`` rather than a deadlock if the lock is taken.
        """
        main = get_ident() == self.main_ident
        if main:
            outer, self.main_in_lock = self.main_in_lock, True
        try:
            if not self.lock.acquire(False):
                if main and outer:  # a signal handler on top of our own critical section
                    raise RuntimeError(self._reentry_message(operation))
                self.lock.acquire()
            try:
                yield
            finally:
                self.lock.release()
        finally:
            if main:
                self.main_in_lock = outer

    def _reentry_message(self, operation: str) -> str:
        return (
            f"{operation}() of pool {self.name!r} was called from a signal handler that "
            "interrupted the pool while it held its lock; only shutdown() is safe there"
        )

    def shutdown(self, *, wait: bool, cancel: bool, message: str = SHUTDOWN_MESSAGE) -> None:
        """Stops accepting work; cancels the queue if ``cancel``; joins if ``wait``."""
        if get_ident() == self.main_ident and self.main_in_lock:
            # A signal handler running on top of the main thread inside (or entering) a
            # critical section: blocking on the lock could deadlock, and so could waiting.
            if self.lock.acquire(blocking=False):  # the interrupted code was not holding it
                try:
                    doomed, _ = self._close(cancel, message)
                finally:
                    self.lock.release()
                _cancel_all(doomed)
            else:
                # Held, perhaps by the code we interrupted. Refuse new work now (a plain
                # store: a section that already passed its check just ran a little
                # earlier than this shutdown) and let another thread wait for the lock.
                if self.closed is None:
                    self.closed = message
                threading.Thread(
                    target=self.shutdown,
                    kwargs={"wait": False, "cancel": cancel, "message": message},
                    name=f"{self.name}-shutdown",
                    daemon=True,
                ).start()
            return
        with self.guarded("shutdown"):
            doomed, workers = self._close(cancel, message)
        _cancel_all(doomed)
        if wait:
            current = threading.current_thread()
            for worker in workers:
                if worker.thread is not current:  # a task or callback shutting down
                    worker.launched.wait()  # a submitter may be starting it right now
                    if worker.thread.ident is not None:  # it did start
                        worker.thread.join()

    def _close(self, cancel: bool, message: str) -> tuple[list[WorkItem], list[Worker]]:
        if self.closed is None:
            self.closed = message
        doomed: list[WorkItem] = []
        if cancel and self.queue:
            doomed = list(self.queue)
            self.queue.clear()
            self.cancelled += len(doomed)
        self._retire_idle()
        if self.waiting:
            self.not_full.notify_all()
        return doomed, list(self.workers)

    def abandon(self) -> None:
        """The executor was garbage-collected: drain the queue, then let threads exit.

        Runs in a GC callback, in whatever thread triggered the collection, maybe one that
        holds the lock: so no lock here, only a flag and reentrant ``SimpleQueue.put``s.
        Nobody can submit any more (the executor is gone), so the unlocked write is safe.
        """
        if self.closed is None:
            self.closed = SHUTDOWN_MESSAGE
        for worker in list(self.workers):
            worker.inbox.put(WAKE)

    def resize(self, min_workers: int | None, max_workers: int | None) -> None:
        """Changes the limits; the caller has validated each value on its own."""
        with self.guarded("resize"):
            if self.closed is not None:
                raise RuntimeError(f"cannot resize pool {self.name!r} after shutdown")
            low = self.min_workers if min_workers is None else min_workers
            high = self.max_workers if max_workers is None else max_workers
            check_order(low, high)
            self.min_workers, self.max_workers = low, high
            queue = self.queue
            reserved: list[Worker] = []
            while queue and self.nworkers < high:  # more room: start on what waits
                reserved.append(self._reserve(queue.popleft()))
                self.active += 1
            while self.nworkers < low:
                reserved.append(self._reserve(None))
            if self.waiting:
                self.not_full.notify_all()
            # Surplus idle threads go now; busy ones when their task is done.
            self._retire_idle(keep=high)
            for worker in self.idle:  # their idle timeout may have changed
                worker.inbox.put(WAKE)
        for worker in reserved:
            self._launch(worker)

    def snapshot(self) -> PoolStats:
        """One consistent ``PoolStats``."""
        with self.guarded("stats"):
            return self._stats()

    def metrics(self) -> tuple[PoolStats, HistogramSnapshot, HistogramSnapshot]:
        """Stats, queue-wait and run-time histograms, all from one instant."""
        with self.guarded("stats"):
            self._fold_timings()
            return self._stats(), self.queue_wait.snapshot(), self.run_time.snapshot()

    def _fold_timings(self) -> None:
        self.queue_wait.fold(self.pending_waits)
        self.run_time.fold(self.pending_runs)
        self.pending_waits.clear()
        self.pending_runs.clear()

    def _stats(self) -> PoolStats:
        return PoolStats(
            workers=self.nworkers,
            idle_workers=len(self.idle),
            active=self.active,
            queued=len(self.queue),
            queue_capacity=self.capacity,
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            peak_workers=self.peak_workers,
            submitted=self.submitted,
            completed=self.completed,
            failed=self.failed,
            cancelled=self.cancelled,
            rejected=self.rejected,
        )

    def recent_failures(self) -> list[TaskFailure]:
        with self.guarded("recent_failures"):
            return [] if self.failures is None else list(self.failures)

    def limits(self) -> tuple[int, int]:
        with self.guarded("_max_workers"):
            return self.min_workers, self.max_workers

    def after_fork_in_child(self) -> None:
        """Makes the pool usable in a forked child, whose only thread is the forker.

        The parent's threads do not exist here and its locks may be held by them, so the
        state starts afresh: new locks, no queue (the parent runs those tasks; running
        them here too would do their work twice) and counters from zero. If the forking
        thread is one of our workers it is adopted, busy or idle as it was.
        """
        self._reset_sync()
        current = threading.current_thread()
        adopted = next((w for w in self.workers if w.thread is current), None)
        was_idle = adopted is not None and adopted in self.idle
        self.queue = deque()
        self.idle = [adopted] if adopted is not None and was_idle else []
        self.workers = set() if adopted is None else {adopted}
        self.nworkers = self.peak_workers = len(self.workers)
        busy = int(adopted is not None and not was_idle)
        self.active = self.submitted = busy
        self.completed = self.failed = self.cancelled = self.rejected = 0
        if self.failures is not None:
            self.failures = deque(maxlen=self.failures.maxlen)
        self.queue_wait = Histogram(self.queue_wait.bounds)
        self.run_time = Histogram(self.run_time.bounds)
        self.pending_waits = []
        self.pending_runs = []
        self.waiting = 0
        self.main_in_lock = False
        self.main_ident = get_ident()
        if adopted is not None:
            adopted.inbox = SimpleQueue()
            adopted.launched = threading.Event()
            adopted.launched.set()


def _cancel_all(items: list[WorkItem]) -> None:
    """Cancels queued futures outside the lock: ``cancel()`` runs done-callbacks."""
    for future, *_ in items:
        future.cancel()
        # Wakes wait() and as_completed(), which cancel() alone leaves waiting.
        future.set_running_or_notify_cancel()
