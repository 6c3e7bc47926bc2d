"""The Dask backend: the pool core (admission, accounting, failure records, deadlines,
shutdown) with accepted work handed to a ``distributed`` cluster instead of threads.

How work moves (every decision under ``self.lock``; the client is never called with it held):

1. ``submit`` puts the task *in flight* if fewer than ``max_in_flight`` are, else appends it
   to the bounded FIFO ``queue``, else joins the line of waiting callers (``_admission``) or
   is rejected. Handing it to the scheduler (``_send``) happens once the lock is released:
   ``client.submit`` of the trampoline ``_dask_call.call`` with a unique key and
   ``pure=False``, so that every keyword reaches ``fn`` and no two calls are merged.
2. A coroutine on the client's event loop (``_watch``, as Dask's own ``ClientExecutor``
   does) awaits each task's outcome and settles it (``_settle``): counts it under the lock,
   takes queued tasks into flight and admits waiting callers, then, without the lock,
   resolves the caller's future (its done-callbacks run on the loop's thread, as with
   ``client.get_executor()``) and hands the next tasks to the scheduler.

Cancellation reaches the cluster through the task's handle: a deadline, ``future.cancel(
interrupt=True)`` and a shutdown that cancels in-flight work all cancel the handle, whose
``on_cancel`` callback cancels the Dask future (asynchronously, on the loop). A cancelled
or expired task stays ``active`` (expired ones also ``overrunning``) until Dask reports its
future released, and is counted then, as a thread pool counts a task when its thread is
free. A Python frame already running on a worker is not interrupted (Dask cannot).

Invariants, beside those of ``_pool``: ``in_flight`` holds exactly the tasks handed (or
being handed) to the scheduler and not yet counted, so ``active == len(in_flight)`` plus
the tasks run by their callers (``overflow="caller_runs"``); the queue is non-empty only
while ``in_flight`` is full; nothing here keeps a finished task's callable, arguments,
result or Dask future.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from functools import partial
from threading import get_ident
from time import monotonic, perf_counter, time
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from ._admission import Overflow, Waiter
from ._dask_call import TIMING, call
from ._deadlines import Deadlines
from ._errors import PoolOverloaded, deadline_passed
from ._failures import TaskFailure, describe
from ._future import TrackedFuture
from ._handle import TaskHandle
from ._items import WorkItem
from ._lean_future import sleep_until_released
from ._ledger import FOLD_BATCH
from ._pool import PoolCore
from ._takeover import EXPIRED
from ._task import Task, task_name
from ._workers import fail_future, log_callback_error

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskCore"]

logger = logging.getLogger("threadpool_plus")


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


class DaskCore(PoolCore):
    """The state a ``DaskExecutor`` shares with its completion coroutines."""

    __slots__ = (
        "client",  # fixed at construction; never closed here (the caller owns it)
        "deadlines",  # the deadline watcher (its own lock)
        "in_flight",  # TrackedFuture -> InFlight, for the tasks handed to the scheduler
        "loop",  # the client's event loop (a tornado IOLoop); fixed
        "max_in_flight",  # fixed at construction
        "nthreads",  # the cluster's threads when constructed (the workers gauge)
        "peak",  # the most tasks in flight at once
        "sleepers",  # shutdown(wait=True) callers, woken when nothing is left in flight
    )

    def __init__(
        self,
        client: distributed.Client,
        *,
        name: str,
        max_in_flight: int,
        nthreads: int,
        capacity: int,
        overflow: str,
        failure_history: int,
        on_task_error: Callable[[TaskFailure], object] | None,
        histogram_buckets: tuple[float, ...],
    ) -> None:
        self.client = client
        self.loop: Any = client.loop
        self.max_in_flight = max_in_flight
        self.nthreads = nthreads
        self.on_task_error = on_task_error
        self._open_pool(name, capacity, None, overflow)
        self._open_ledger(failure_history, histogram_buckets)
        # Guarded by self.lock:
        self.in_flight: dict[TrackedFuture[Any], InFlight] = {}
        self.peak = 0
        self.sleepers: list[threading.Lock] = []
        self.deadlines = Deadlines(name, self.expire_task, lambda: self.refusal is not None)

    # -- submitting -----------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Future[Any]:
        """Accepts a task or raises; ``timeout`` as for ``ThreadCore.submit``."""
        future: TrackedFuture[Any] = TrackedFuture()
        item = (future, fn, args, kwargs, perf_counter())
        main = get_ident() == self.main_ident
        placed: InFlight | Waiter | Overflow | bool
        with self.guarded("submit"):
            if self.refusal is not None:
                raise self._refusal()
            if len(self.in_flight) < self.max_in_flight:  # then the queue is empty
                placed = self._hand(item)
                self.submitted += 1
            elif not self.capacity or len(self.queue) < self.capacity:
                self.queue.append(item)
                self.submitted += 1
                placed = True
            else:
                placed = self._line_up(item, timeout)
        if placed.__class__ is InFlight:
            self._send([placed])
        elif placed is not True:
            if placed.__class__ is Waiter:  # (an AsyncWaiter is asubmit's to await)
                placed = self._await_room(placed, main)
            if isinstance(placed, Overflow):
                self._overflowed(placed)
            elif placed is False:
                raise PoolOverloaded(self.name, self.capacity)
        return future

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
        return handed

    def _forget(self, future: TrackedFuture[Any]) -> None:
        """Takes a settled task out of flight. Lock held."""
        del self.in_flight[future]
        self.active -= 1

    def _send(self, entries: list[InFlight]) -> None:
        """Hands tasks to the scheduler, and those that take their place when one cannot
        be sent. Called without the lock; raises the first ``BaseException`` that
        ``client.submit`` raised once every task is settled or sent."""
        pending = deque(entries)
        first: BaseException | None = None
        while pending:
            try:
                pending.extend(self._send_one(pending.popleft()))
            except _SubmitFailed as failed:
                pending.extend(failed.handed)
                first = first or failed.error
        if first is not None and not isinstance(first, Exception):
            raise first

    def _send_one(self, entry: InFlight) -> list[InFlight]:
        item = entry.item
        assert item is not None
        future, fn, args, kwargs, accepted = item
        task = fn if fn.__class__ is Task else None
        try:
            runnable = future.set_running_or_notify_cancel()  # False: its caller cancelled
        except RuntimeError:  # resolved before it was sent: by its deadline, or by hand
            runnable = False
        how = None if runnable else future._taken_by
        deadline = None if task is None else task.deadline
        if runnable and deadline is not None and monotonic() >= deadline:
            # A task past its deadline before it was sent is never sent.
            runnable = False
            expired = future.expire(deadline_passed(self.name, entry.name))
            how = EXPIRED if expired else future._taken_by
        if not runnable:
            entry.item = None
            with self.lock:
                self._forget(future)
                if how is None:
                    self.cancelled += 1
                else:
                    self._count_taken(how)
                handed = self._refill()
            if how == EXPIRED:
                future.run_callbacks()
            return handed
        entry.waited = perf_counter() - accepted
        plain = task.fn if task is not None else fn
        try:
            if self.client.status in ("closing", "closed"):  # it would never answer
                raise RuntimeError(f"the Dask client of pool {self.name!r} is closed")
            dask_future = self.client.submit(
                call, plain, args, kwargs, key=f"{entry.name}-{uuid4().hex}", pure=False
            )
        except BaseException as error:  # it could not be handed over: a failure of the task
            failure = describe(fn, error, "client", time(), 0.0)
            _forget_frames(error)  # Dask's, which hold the key it made: release it
            entry.item = None
            with self.lock:
                self._forget(future)
                self._record_failure(failure, entry.waited, 0.0)
                handed = self._refill()
            fail_future(self, future, error, failure, "client")
            raise _SubmitFailed(error, handed) from None
        entry.dask_future = dask_future
        del dask_future
        # The handle carries cancellation to the cluster: a Task is its own (deadlines
        # cancel it); a plain task gets one now (interrupts and shutdown cancel it).
        handle = entry.handle = (
            task if task is not None else future.attach_handle(TaskHandle(entry.name, None))
        )
        handle.on_cancel(partial(self._cancel_remote, entry))  # at once if cancelled already
        self.loop.add_callback(self._watch, entry)
        return []

    # -- completion (on the client's event loop) ------------------------------------------

    async def _watch(self, entry: InFlight) -> None:
        """Awaits a task's Dask future, then settles the task."""
        dask_future = entry.dask_future
        assert dask_future is not None
        interrupted: BaseException | None = None
        try:
            # What Dask's own ClientExecutor awaits: the result (gathered from the worker),
            # the (type, exception, traceback) of an error, or the CancelledError.
            outcome = await dask_future._result(raiseit=False)  # type: ignore[no-untyped-call]
            status = str(dask_future.status)
        except BaseException as error:  # the client could not gather (closed, say)
            outcome, status = (type(error), error, None), "error"
            interrupted = None if isinstance(error, Exception) else error
        entry.dask_future = None
        del dask_future  # released once this frame is gone: nothing stays on the scheduler
        self._settle(entry, status, outcome)  # settled on every path: shutdown waits for it
        if interrupted is not None:  # the loop is cancelling this coroutine: let it
            raise interrupted

    def _settle(self, entry: InFlight, status: str, outcome: Any) -> None:
        item = entry.item
        assert item is not None
        entry.item = None
        future, fn, _, _, _ = item
        del item
        result: Any = None
        error: BaseException | None = None
        failure: TaskFailure | None = None
        ran = 0.0
        if status == "finished":
            result, ran = outcome
        elif status != "cancelled":  # "error": the task raised, or its worker died
            _, error, traceback = outcome
            assert error is not None
            if traceback is not None:
                error = error.with_traceback(_without_trampoline(traceback))
            timing = vars(error).pop(TIMING, None) if hasattr(error, "__dict__") else None
            # KilledWorker and its like: no timing from a worker, so the client's view.
            started_at, ran, where = timing or (time(), 0.0, "dask")
            failure = describe(fn, error, where, started_at, ran)
        with self.lock:
            self._forget(future)
            how = future._taken_by
            if how is not None:
                self._count_taken(how)  # expired, or cancelled by an interrupt or shutdown
            elif status == "finished":
                self.completed += 1
                self.pending_waits.append(entry.waited)
                self.pending_runs.append(ran)
                if len(self.pending_waits) >= FOLD_BATCH:
                    self._fold_timings()
            elif failure is not None:
                self._record_failure(failure, entry.waited, ran)
            else:  # cancelled on the cluster by someone else (client.cancel, a timeout)
                self.cancelled += 1
            handed = self._refill()
        if how is None:
            if status == "finished":
                try:
                    future.set_result(result)
                except InvalidStateError:  # interrupted just after it was counted
                    pass
                except BaseException:
                    log_callback_error(self.name, future, "dask")
                del result
            elif failure is not None and error is not None:
                fail_future(self, future, error, failure, failure.thread)
            else:
                future.cancel(interrupt=True)
        self._send(handed)

    # -- cancellation ---------------------------------------------------------------------

    def _cancel_remote(self, entry: InFlight) -> None:
        """The task's handle was cancelled: cancel its Dask future, without waiting."""
        dask_future = entry.dask_future
        if dask_future is not None:  # else settled, or sent later, and then at once
            self.loop.add_callback(self._cancel_async, dask_future)

    async def _cancel_async(self, dask_future: distributed.Future[Any]) -> None:
        try:
            await self.client.cancel(  # type: ignore[no-untyped-call]
                [dask_future], asynchronous=True
            )
        except Exception:  # the client is closing: nothing is left to cancel
            logger.debug("pool %r could not cancel %s", self.name, dask_future.key)

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

    def _stop_running(self, cancel: bool) -> tuple[str, ...]:
        """``shutdown(drain=False)``: cancels what is in flight (the futures at once, the
        Dask futures on the cluster); returns their names."""
        if not cancel:
            return ()
        with self.guarded("shutdown"):
            entries = [(f, e) for f, e in self.in_flight.items() if not f.done()]
        for future, _ in entries:
            future.cancel(interrupt=True)  # cancels the handle: -> _cancel_remote
        return tuple(entry.name for _, entry in entries)

    def _give_up(self) -> tuple[list[WorkItem], tuple[str, ...]]:
        with self.guarded("shutdown"):
            late = self._take_queue()
        return late, self._stop_running(True)

    # -- shutdown and reading -------------------------------------------------------------

    def _close(self, cancel: bool, message: str) -> list[WorkItem]:
        doomed = super()._close(cancel, message)
        self.deadlines.wake()  # to end once nothing is left to watch
        return doomed

    def _retire_idle(self, keep: int = 0) -> None:
        pass  # no runner of its own to retire

    def _wait_for_workers(self, deadline: float | None = None) -> bool:
        """Returns True once nothing is queued or in flight and Dask has released every
        key this pool submitted, False at ``deadline``. From the client's event loop (a
        done-callback) it cannot wait: what it would wait for needs that loop."""
        if self._on_loop():
            return True
        while True:
            with self.guarded("shutdown"):
                if not self.in_flight and not self.queue:
                    break
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
        # Each Dask future was dropped before its task was settled; Dask releases its key
        # in a callback on the loop. One round trip through the loop runs those first.
        self.client.sync(_nothing)  # type: ignore[no-untyped-call]
        return True

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop.asyncio_loop
        except RuntimeError:
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


def _forget_frames(error: BaseException) -> None:
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


async def _nothing() -> None:
    """A no-op to run on the client's loop: it runs after every callback queued before."""


class _SubmitFailed(Exception):
    """``client.submit`` raised ``error``; ``handed`` took the task's place in flight."""

    def __init__(self, error: BaseException, handed: list[InFlight]) -> None:
        super().__init__(error)
        self.error = error
        self.handed = handed
