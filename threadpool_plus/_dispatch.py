"""What a worker thread asks of its pool (the ``WorkerHost`` side of the thread backend),
and waiting for the threads to exit.

Each call takes the pool's lock once, counts what the worker reports and tells it what to do
next: run a task, wait idle, or exit (``EXIT``: it has been uncounted already). Under load a
finished task's ``active`` slot passes straight to the next queued task, and whoever takes a
task off a full queue admits the oldest waiting caller into the room it made.
"""

from __future__ import annotations

import threading
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any

from ._deadlines import Deadlines
from ._errors import BROKEN_MESSAGE, BrokenThreadPool, deadline_passed
from ._failures import TaskFailure, logger
from ._future import TrackedFuture
from ._handle import TaskHandle
from ._items import EXIT, WAKE, Message, WorkItem, settle_unstarted, sort_unstarted
from ._lean_future import sleep_until_released
from ._ledger import FOLD_BATCH
from ._pool import PoolCore, State
from ._task import Task, task_name
from ._workers import Worker

__all__ = ["Dispatch"]

# How long shutdown(wait=True) waits for a thread whose start() was interrupted to check in:
# if the interrupt came before the OS thread existed, there is nothing to wait for, and
# Python offers no way to tell the two cases apart other than waiting.
_LIMBO_GRACE = 1.0


class Dispatch(PoolCore):
    """The worker-facing layer of ``ThreadCore``, which sets these fields up."""

    __slots__ = (
        "deadlines",  # the deadline watcher (its own lock); set up in ThreadCore
        "exit_sleepers",  # shutdown(wait=True) callers, woken when a thread exits
        "exited",  # threads that left _run() once the pool closed, until shutdown joins them
        "idle",  # idle workers, most recently idle last
        "idle_timeout",  # fixed at construction
        "max_workers",
        "min_workers",
        "nworkers",  # workers counted: not retired (<= len(workers))
        "workers",  # threads that may still run (for joins and WAKE)
    )

    if TYPE_CHECKING:  # the types of the fields above
        deadlines: Deadlines
        exit_sleepers: list[threading.Lock]
        exited: list[threading.Thread]
        idle: list[Worker]
        idle_timeout: float | None
        max_workers: int
        min_workers: int
        nworkers: int
        workers: set[Worker]

    def check_in(self, worker: Worker) -> bool:
        with self.lock:
            if worker.taken_back:  # its launcher gave up on it and recovered its tasks
                self._forget(worker)
                return False
            worker.checked_in = True
            return True

    def task_completed(self, worker: Worker, waited: float, ran: float) -> Message:
        # The hot path: one lock round trip per task.
        with self.lock:
            running = worker.running
            worker.running = None
            if running is not None and running[0]._taken_by is not None:
                return self._taken(worker, running[0]._taken_by)
            self.completed += 1
            waits = self.pending_waits  # folded into the histograms in batches
            waits.append(waited)
            self.pending_runs.append(ran)
            if len(waits) >= FOLD_BATCH:
                self._fold_timings()
            queue = self.queue
            if queue and self.nworkers <= self.max_workers:
                item = queue.popleft()
                if self.waiters:
                    self._admit_waiters()
                return item
            self.active -= 1
            return self._next_task(worker)

    def task_failed(self, worker: Worker, record: TaskFailure, wait: float, run: float) -> Message:
        with self.lock:
            running = worker.running
            worker.running = None
            if running is not None and running[0]._taken_by is not None:
                return self._taken(worker, running[0]._taken_by)  # not a failure, then
            self.active -= 1
            self._record_failure(record, wait, run)
            return self._next_task(worker)

    def task_taken(self, worker: Worker, how: str) -> Message:
        """``task_completed`` for a task whose future was taken over (``how``: ``DEADLINE``,
        ``INTERRUPT``), or that this worker expired before it started (``EXPIRED``)."""
        with self.lock:
            worker.running = None
            return self._taken(worker, how)

    def _taken(self, worker: Worker, how: str) -> Message:
        self.active -= 1
        self._count_taken(how)
        return self._next_task(worker)

    def expire_task(self, future: TrackedFuture[Any], task: Task) -> None:
        """The deadline watcher, at ``task``'s deadline: a queued task leaves the queue for
        ``expired``; a running one is counted ``overrunning`` until it returns. Either way
        its future fails with ``TaskTimeout`` and its handle is cancelled."""
        with self.guarded("deadline"):
            started = future.running()  # else pending: in the queue, or handed to a worker
            if not future.expire(deadline_passed(self.name, task.name)):
                return  # finished, cancelled, or expired by its worker already
            if not started and self._unqueue_future(future):
                self.expired += 1
                if self.waiters:
                    self._admit_waiters()
            elif not started or any(
                w.running is not None and w.running[0] is future for w in self.workers
            ):
                self.overrunning += 1  # until its worker reports (task_taken, _taken)
            # else its worker counted it as it returned: it stays counted so (_takeover).
        future.run_callbacks()
        task.cancel_task()

    def _close(self, cancel: bool, message: str) -> list[WorkItem]:
        doomed = super()._close(cancel, message)
        self.deadlines.wake()  # to end once nothing is left to watch
        return doomed

    def task_skipped(self, worker: Worker) -> Message:
        with self.lock:
            worker.running = None
            self.active -= 1
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
            item = queue.popleft()
            if self.waiters:
                self._admit_waiters()
            return item
        if self.refusal is not None:
            self.nworkers -= 1
            return EXIT
        self.idle.append(worker)
        worker.wait_timeout = self._idle_wait(self.nworkers)
        return None

    def _idle_wait(self, nworkers: int) -> float | None:
        # Only threads above min_workers may time out; the others wait for good.
        return self.idle_timeout if nworkers > self.min_workers else None

    def recheck(self, worker: Worker, timed_out: bool) -> Message:
        with self.lock:
            idle = self.idle
            if worker not in idle:
                # Someone took this worker off the stack after its wait ended; they put
                # its message in the inbox before releasing the lock, so it is there.
                while (message := worker.inbox.get_nowait()) is WAKE:
                    pass
                return message
            if self.refusal is not None:
                # Perhaps only requested (the executor was collected): make it so.
                self._advance(State.DRAINING, self.refusal)
            if (
                self.refusal is not None
                or self.nworkers > self.max_workers
                or (timed_out and self.nworkers > self.min_workers)
            ):
                idle.remove(worker)
                self.nworkers -= 1
                return EXIT
            worker.wait_timeout = self._idle_wait(self.nworkers)
            return None

    def forget(self, worker: Worker) -> None:
        with self.lock:
            self._forget(worker)

    def _forget(self, worker: Worker) -> None:
        """Drops an exited thread from the books and wakes whoever waits for it. Lock held."""
        self.workers.discard(worker)
        if self.refusal is not None:
            # Its thread is still winding down: shutdown(wait=True) joins it. (Threads that
            # retire from an open pool are nobody's to join, and are not kept.)
            self.exited.append(worker.thread)
            if not self.workers:
                self._advance(State.TERMINATED, self.refusal)
                self.deadlines.wake()
        self._wake_joiners()

    def _wake_joiners(self) -> None:
        for sleeper in self.exit_sleepers:
            sleeper.release()
        self.exit_sleepers.clear()

    def _wait_for_workers(self, deadline: float | None = None) -> bool:
        """Returns True when every worker thread has exited, except: the caller's own (a
        task or done-callback shutting down), those themselves waiting here (two tasks that
        shut down at once would otherwise wait for each other) and one the caller is
        starting (a signal handler on top of ``submit``, which cannot finish under it).
        Returns False at ``deadline`` (a ``time.monotonic()`` value) if some still run."""
        me = threading.current_thread()
        ident = get_ident()
        mine: Worker | None = None
        limbo_until: float | None = None
        try:
            while True:
                timeout: float | None = None
                with self.guarded("shutdown"):
                    if mine is None and (mine := self._worker_of(me)) is not None:
                        mine.joining = True
                        self._wake_joiners()  # a task already waiting may wait for us no more
                    pending = [
                        w
                        for w in self.workers
                        if w is not mine
                        and not w.joining
                        and (w.launched or w.checked_in or w.launcher != ident)
                    ]
                    if any(w.taken_back for w in pending):  # start() was interrupted
                        now = monotonic()
                        limbo_until = limbo_until or now + _LIMBO_GRACE
                        if now < limbo_until:
                            timeout = limbo_until - now
                        else:  # it never checked in: the interrupt came before the thread
                            self.workers.difference_update(w for w in pending if w.taken_back)
                            pending = [w for w in pending if not w.taken_back]
                    if not pending:
                        break
                    if deadline is not None:
                        left = deadline - monotonic()
                        if left <= 0:
                            return False
                        timeout = left if timeout is None else min(timeout, left)
                    sleeper = threading.Lock()
                    sleeper.acquire()
                    self.exit_sleepers.append(sleeper)
                sleep_until_released(sleeper, timeout)
        finally:
            if mine is not None:
                with self.guarded("shutdown"):
                    mine.joining = False
        with self.guarded("shutdown"):
            exited = [thread for thread in self.exited if thread is not me]
        for thread in exited:  # they have left _run(): let them finish altogether
            thread.join(None if deadline is None else max(0.0, deadline - monotonic()))
        with self.guarded("shutdown"):
            # Joined: nobody needs them any more, and a pool that outlives its shutdown
            # must not keep its dead threads' objects alive.
            self.exited = [t for t in self.exited if t not in exited or t.is_alive()]
        return True

    def _give_up(self) -> tuple[list[WorkItem], tuple[str, ...]]:
        with self.guarded("shutdown"):
            late = self._take_queue()
            running = [w.running for w in self.workers if w.running is not None]
        names = tuple(task_name(item[1]) for item in running)
        if names:
            logger.warning(
                "shutdown of pool %r timed out with %d task(s) still running: %s; their "
                "cancellation is requested",
                self.name,
                len(names),
                ", ".join(names),
                extra={"pool": self.name},
            )
        for future, fn, *_ in running:
            handle = future._handle
            if handle is None:
                handle = future.attach_handle(TaskHandle(task_name(fn), None))
            handle.cancel_task()
        return late, names

    def _worker_of(self, thread: threading.Thread) -> Worker | None:
        for worker in self.workers:
            if worker.thread is thread:
                return worker
        return None

    def initializer_failed(self, worker: Worker) -> None:
        with self.lock:
            self.broken = True
            self._advance(State.BROKEN, BROKEN_MESSAGE)
            handed = self._reclaim(worker)
            self.active -= len(handed)
            doomed = self._unqueue(handed)
            self._retire_idle()
            self._refuse_waiters()
        error = settle_unstarted(doomed, lambda: BrokenThreadPool(BROKEN_MESSAGE))
        if error is not None:  # nobody above this thread to raise it to
            logger.error(
                "a done-callback raised while pool %r failed its pending tasks",
                self.name,
                exc_info=error,
                extra={"pool": self.name, "worker": worker.thread.name},
            )

    def _unqueue(self, handed: list[WorkItem]) -> list[TrackedFuture[Any]]:
        """Fails ``handed`` and the whole queue; returns their futures. Lock held;
        ``handed`` is no longer counted as active."""
        items = handed + list(self.queue)
        self.queue.clear()
        return self._fail_items(items)

    def _fail_items(self, items: list[WorkItem]) -> list[TrackedFuture[Any]]:
        """Counts tasks that will never run as failed (or cancelled, if their caller got
        there first); returns the futures to fail once the lock is released. Lock held."""
        futures, failed, cancelled = sort_unstarted(items)
        self.failed += failed
        self.cancelled += cancelled
        return futures

    def _reclaim(self, worker: Worker) -> list[WorkItem]:
        """Uncounts a worker that will run nothing more; returns the tasks it held, which
        are still counted as active. Lock held."""
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
