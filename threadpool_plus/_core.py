"""The pool's shared state: one lock and everything it guards.

``PoolCore`` is what the worker threads hold; the public ``ThreadPoolExecutor`` is a thin
shell around it. Keeping them apart lets a pool that the user dropped without
``shutdown()`` be garbage-collected while its threads drain the queue and exit.

How work moves (every step under ``self.lock``):

1. ``submit`` hands the task to the most recently idle worker (LIFO, so the surplus
   threads at the bottom of the stack stay idle long enough to retire), else starts a
   thread for it if fewer than ``max_workers`` are alive, else appends it to the bounded
   FIFO ``queue``, else waits for room on ``not_full`` as the caller's timeout allows.
2. A worker that finishes a task counts it, then takes the next queued task or pushes
   itself onto the idle stack, *before* it resolves the task's future. So ``stats()``
   already counts a task when its future resolves, and a ``submit`` made right after
   ``result()`` returns finds this worker idle instead of starting another thread.
3. An idle worker blocks on its own ``SimpleQueue`` inbox. A task arrives there, or
   ``EXIT`` (it has been retired: the sender already uncounted it), or ``WAKE`` (look at
   the pool again: it may have shrunk, closed or been dropped).

Two callers must never take the lock, because the thread they interrupt may hold it:
a garbage-collector callback (``abandon``) and a signal handler that interrupted a
critical section of the main thread (see ``shutdown``). Both only store a flag and put
``WAKE`` into inboxes: ``SimpleQueue.put`` is reentrant.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from queue import SimpleQueue
from threading import get_ident
from time import monotonic, perf_counter
from typing import Any

from ._errors import BROKEN_MESSAGE, SHUTDOWN_MESSAGE, BrokenThreadPool, PoolOverloaded
from ._failures import TaskFailure, TrackedFuture
from ._histogram import Histogram, HistogramSnapshot
from ._stats import PoolStats
from ._workers import CANCELLED, COMPLETED, EXIT, FAILED, WAKE, Message, Worker, WorkItem

__all__ = ["PoolCore"]


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
        self.waiting = 0  # submitters blocked on not_full
        self.thread_number = 0  # the next thread's name suffix; never reused
        self.closed: str | None = None  # why new work is refused (None: open)
        self.broken: str | None = None  # set when an initializer failed
        # Written only by the main thread: True while it is inside (or entering) a
        # critical section, so a signal handler running on top of it can tell.
        self.main_in_lock = False
        self.deferred_shutdown: bool | None = None  # cancel flag of a deferred shutdown
        self.main_ident = threading.main_thread().ident

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
        if main:
            self.main_in_lock = True
        try:
            with self.lock:
                if self.closed is not None:
                    raise self._refusal()
                if not self._place(item):
                    self._wait_for_room(item, timeout)
        finally:
            if main:
                self._leave_main()
        return future

    def _place(self, item: WorkItem) -> bool:
        """Hands ``item`` to a worker or queues it; False if there is no room. Lock held."""
        idle = self.idle
        if idle:
            idle.pop().inbox.put(item)
            self.active += 1
        elif self.nworkers < self.max_workers:
            self._spawn(item)
            self.active += 1
        elif not self.capacity or len(self.queue) < self.capacity:
            self.queue.append(item)
        else:
            return False
        self.submitted += 1
        return True

    def _wait_for_room(self, item: WorkItem, timeout: float | None) -> None:
        """Waits on ``not_full`` until ``item`` is placed, the pool closes or time runs out."""
        if timeout != 0:
            deadline = None if timeout is None else monotonic() + timeout
            self.waiting += 1
            try:
                while True:
                    self.not_full.wait(None if deadline is None else deadline - monotonic())
                    if self.closed is not None:
                        raise self._refusal()
                    if self._place(item):
                        return
                    if deadline is not None and monotonic() >= deadline:
                        break
            finally:
                self.waiting -= 1
        self.rejected += 1
        raise PoolOverloaded(self.name, self.capacity)

    def _refusal(self) -> BaseException:
        if self.broken is not None:
            return BrokenThreadPool(self.broken)
        return RuntimeError(self.closed)

    # -- workers ------------------------------------------------------------------------

    def _spawn(self, first: WorkItem | None) -> None:
        """Starts a worker, with ``first`` as its first task or idle. Lock held."""
        number = self.thread_number
        self.thread_number += 1
        worker = Worker(self, f"{self.thread_prefix}_{number}", first)
        if first is None:
            worker.wait_timeout = self._idle_wait(self.nworkers + 1)
        worker.thread.start()  # if this raises, nothing has been counted
        self.workers.add(worker)
        self.nworkers += 1
        if self.nworkers > self.peak_workers:
            self.peak_workers = self.nworkers
        if first is None:
            self.idle.append(worker)

    def start_min_workers(self) -> None:
        """Starts the ``min_workers`` threads that never retire."""
        with self.guarded():
            while self.nworkers < self.min_workers:
                self._spawn(None)

    def _idle_wait(self, nworkers: int) -> float | None:
        # Only threads above min_workers may time out; the others wait for good.
        return self.idle_timeout if nworkers > self.min_workers else None

    def task_done(
        self,
        worker: Worker,
        outcome: int,
        waited: float = 0.0,
        ran: float = 0.0,
        failure: TaskFailure | None = None,
    ) -> Message:
        """Counts a finished task (``waited`` and ``ran`` in seconds); returns the worker's
        next task, ``None`` (now idle) or ``EXIT``. The hot path: one lock round trip."""
        with self.lock:
            self.active -= 1
            if outcome == COMPLETED:
                self.completed += 1
            elif outcome == FAILED:
                self.failed += 1
                if self.failures is not None and failure is not None:
                    self.failures.append(failure)
            else:
                self.cancelled += 1
            if outcome != CANCELLED:
                # Histogram.observe, inlined: this runs once per task.
                hist = self.queue_wait
                hist.counts[bisect_left(hist.bounds, waited)] += 1
                hist.sum += waited
                hist = self.run_time
                hist.counts[bisect_left(hist.bounds, ran)] += 1
                hist.sum += ran
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

    def initializer_failed(self, worker: Worker, first: WorkItem | None) -> None:
        """Breaks the pool: every task not started fails with ``BrokenThreadPool``."""
        with self.lock:
            self.broken = BROKEN_MESSAGE
            if self.closed is None:
                self.closed = BROKEN_MESSAGE
            handed = [] if first is None else [first]
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
            self.active -= len(handed)
            queued = list(self.queue)
            self.queue.clear()
            doomed: list[Future[Any]] = []
            for future, *_ in handed + queued:
                # No user code runs here: set_running_or_notify_cancel only wakes waiters.
                if future.set_running_or_notify_cancel():
                    doomed.append(future)
                    self.failed += 1
                else:  # the caller had cancelled it
                    self.cancelled += 1
            self._retire_idle()
            if self.waiting:
                self.not_full.notify_all()
        for broken in doomed:
            broken.set_exception(BrokenThreadPool(BROKEN_MESSAGE))

    def _retire_idle(self, keep: int = 0) -> None:
        """Retires idle workers, longest idle first, until ``keep`` threads remain."""
        idle = self.idle
        while idle and self.nworkers > keep:
            idle.pop(0).inbox.put(EXIT)
            self.nworkers -= 1

    # -- control ------------------------------------------------------------------------

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Holds the lock, telling a signal handler when the main thread holds it."""
        main = get_ident() == self.main_ident
        if main:
            self.main_in_lock = True
        try:
            with self.lock:
                yield
        finally:
            if main:
                self._leave_main()

    def _leave_main(self) -> None:
        self.main_in_lock = False
        cancel = self.deferred_shutdown
        if cancel is not None:  # a signal handler asked for it while we held the lock
            self.deferred_shutdown = None
            self.shutdown(wait=False, cancel=cancel)

    def shutdown(self, *, wait: bool, cancel: bool, message: str = SHUTDOWN_MESSAGE) -> None:
        """Stops accepting work; cancels the queue if ``cancel``; joins if ``wait``."""
        if get_ident() == self.main_ident and self.main_in_lock:
            # We are a signal handler (or a callback) running on top of the main thread's
            # critical section. Blocking on the lock could deadlock, and so could waiting.
            if not self.lock.acquire(blocking=False):
                # The interrupted code finishes this when it releases the lock.
                self.deferred_shutdown = cancel or bool(self.deferred_shutdown)
                return
            try:
                doomed, _ = self._close(cancel, message)
            finally:
                self.lock.release()
            _cancel_all(doomed)
            return
        with self.guarded():
            doomed, workers = self._close(cancel, message)
        _cancel_all(doomed)
        if wait:
            current = threading.current_thread()
            for worker in workers:
                if worker.thread is not current:  # a task or callback shutting down
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
        with self.guarded():
            if self.closed is not None:
                raise RuntimeError(f"cannot resize pool {self.name!r} after shutdown")
            low = self.min_workers if min_workers is None else min_workers
            high = self.max_workers if max_workers is None else max_workers
            if low > high:
                raise ValueError(
                    f"min_workers ({low}) must not be greater than max_workers ({high})"
                )
            self.min_workers, self.max_workers = low, high
            queue = self.queue
            while queue and self.nworkers < high:  # more room: start on what waits
                self._spawn(queue.popleft())
                self.active += 1
            while self.nworkers < low:
                self._spawn(None)
            if self.waiting:
                self.not_full.notify_all()
            # Surplus idle threads go now; busy ones when their task is done.
            self._retire_idle(keep=high)
            for worker in self.idle:  # their idle timeout may have changed
                worker.inbox.put(WAKE)

    def snapshot(self) -> PoolStats:
        """One consistent ``PoolStats``."""
        with self.guarded():
            return self._stats()

    def metrics(self) -> tuple[PoolStats, HistogramSnapshot, HistogramSnapshot]:
        """Stats, queue-wait and run-time histograms, all from one instant."""
        with self.guarded():
            return self._stats(), self.queue_wait.snapshot(), self.run_time.snapshot()

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
        with self.guarded():
            return [] if self.failures is None else list(self.failures)

    def limits(self) -> tuple[int, int]:
        with self.guarded():
            return self.min_workers, self.max_workers

    def worker_threads(self) -> list[threading.Thread]:
        with self.guarded():
            return [worker.thread for worker in self.workers]

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
        self.waiting = 0
        self.main_in_lock = False
        self.deferred_shutdown = None
        self.main_ident = get_ident()
        if adopted is not None:
            adopted.inbox = SimpleQueue()


def _cancel_all(items: list[WorkItem]) -> None:
    """Cancels queued futures outside the lock: ``cancel()`` runs done-callbacks."""
    for future, *_ in items:
        future.cancel()
        # Wakes wait() and as_completed(), which cancel() alone leaves waiting.
        future.set_running_or_notify_cancel()
