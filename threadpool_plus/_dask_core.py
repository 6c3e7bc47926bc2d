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

The books (what is in flight, counting, deadlines, waiting for shutdown) are the layer
below, ``_dask_flight.DaskFlight``, which never calls the client; this layer talks to it
and holds the lock only through that layer's methods. Nothing here keeps a finished task's
callable, arguments, result or Dask future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from functools import partial
from threading import get_ident
from time import monotonic, perf_counter, time
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from ._admission import Overflow, Waiter
from ._config import Settings
from ._dask_call import call
from ._dask_flight import DaskFlight, InFlight, decode, forget_frames
from ._errors import SHUTDOWN_MESSAGE, PoolOverloaded, deadline_passed
from ._failures import describe
from ._future import TrackedFuture
from ._handle import TaskHandle
from ._items import WorkItem
from ._takeover import EXPIRED
from ._task import Task
from ._workers import fail_future, log_callback_error

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskCore"]

logger = logging.getLogger("threadpool_plus")


class DaskCore(DaskFlight):
    """The state a ``DaskExecutor`` shares with its completion coroutines."""

    __slots__ = (
        "client",  # fixed at construction; never closed here (the caller owns it)
        "loop",  # the client's event loop (a tornado IOLoop); fixed
        "owner",  # the executor (a weakref whose death calls abandon()); fixed
    )

    def __init__(
        self,
        client: distributed.Client,
        *,
        name: str,
        max_in_flight: int,
        nthreads: int,
        settings: Settings,
    ) -> None:
        self.client = client
        self.loop: Any = client.loop
        self.owner: weakref.ref[Any] | None = None  # the executor; abandon() when it dies
        self._open_core(name, settings, max_waiting=None)
        self._open_flight(max_in_flight, nthreads)

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
        placed = self._place(item, timeout)
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
            _, handed = self._count(future, 0.0, 0.0, "cancelled", None, how)
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
            forget_frames(error)  # Dask's, which hold the key it made: release it
            entry.item = None
            _, handed = self._count(future, entry.waited, 0.0, "error", failure)
            fail_future(self, future, error, failure, "client")
            raise _SubmitFailed(error, handed) from None
        entry.dask_future = dask_future
        entry.item = (future, fn, (), {}, accepted)  # Dask holds the arguments now
        del dask_future, args, kwargs
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
        """Counts a task Dask is done with, then resolves its future and sends the tasks
        that take its place in flight. On the loop; takes the lock once."""
        item = entry.item
        assert item is not None
        entry.item = None
        future, fn, _, _, _ = item
        del item
        result, ran, error, failure = decode(fn, status, outcome)
        how, handed = self._count(future, entry.waited, ran, status, failure)
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

    def abandon(self) -> None:
        """The executor was garbage-collected without ``shutdown()``: nobody can submit
        any more, what was accepted still runs, and the deadline watcher ends once nothing
        is left to watch (as after ``shutdown(wait=False)``).

        Runs in a GC callback, in whatever thread triggered the collection, maybe one that
        holds the pool's lock or the watcher's: so only the request (see ``_pool``), and the
        watcher is woken from the client's loop, later.
        """
        if self.refusal is None:
            self.refusal = SHUTDOWN_MESSAGE
        with contextlib.suppress(RuntimeError):  # the loop is closed: so is the client
            self.loop.add_callback(self.deadlines.wake)

    def _cancel_remote(self, entry: InFlight) -> None:
        """The task's handle was cancelled: cancel its Dask future, without waiting."""
        dask_future = entry.dask_future
        if dask_future is not None:  # else settled, or sent later, and then at once
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to cancel
                self.loop.add_callback(self._cancel_async, dask_future)

    async def _cancel_async(self, dask_future: distributed.Future[Any]) -> None:
        try:
            await self.client.cancel(  # type: ignore[no-untyped-call]
                [dask_future], asynchronous=True
            )
        except Exception:  # the client is closing: nothing is left to cancel
            logger.debug("pool %r could not cancel %s", self.name, dask_future.key)

    def _stop_running(self, cancel: bool) -> tuple[str, ...]:
        """``shutdown(drain=False)``: cancels what is in flight (the futures at once, the
        Dask futures on the cluster); returns their names."""
        if not cancel:
            return ()
        entries = self._still_in_flight()
        for future, _ in entries:
            future.cancel(interrupt=True)  # cancels the handle: -> _cancel_remote
        return tuple(entry.name for _, entry in entries)

    def _give_up(self) -> tuple[list[WorkItem], tuple[str, ...]]:
        return self._take_late(), self._stop_running(True)

    # -- shutdown and reading -------------------------------------------------------------

    def _wait_for_workers(self, deadline: float | None = None) -> bool:
        """Returns True once nothing is queued or in flight and Dask has released every
        key this pool submitted, False at ``deadline``. From the client's event loop (a
        done-callback) it cannot wait: what it would wait for needs that loop."""
        if self._on_loop():
            return True
        if not self._wait_idle(deadline):
            return False
        # Each Dask future was dropped before its task was settled; Dask releases its key
        # in a callback on the loop. One round trip through the loop runs those first.
        if self.client.status == "running":  # a closed client released them all
            self.client.sync(_nothing)  # type: ignore[no-untyped-call]
        return True

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop.asyncio_loop
        except RuntimeError:
            return False


async def _nothing() -> None:
    """A no-op to run on the client's loop: it runs after every callback queued before."""


class _SubmitFailed(Exception):
    """``client.submit`` raised ``error``; ``handed`` took the task's place in flight."""

    def __init__(self, error: BaseException, handed: list[InFlight]) -> None:
        super().__init__(error)
        self.error = error
        self.handed = handed
