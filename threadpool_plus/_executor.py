"""The public ``ThreadPoolExecutor``: a drop-in for ``concurrent.futures``' pool."""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

from ._admission import OVERFLOW_POLICIES, TRY_ONLY
from ._compat import StandardNames, wrap_like_standard_submit
from ._config import (
    check_count,
    check_initializer,
    check_limits,
    check_name,
    check_timeout,
)
from ._failures import TaskFailure
from ._histogram import check_buckets
from ._map import map_results, waiting_for_room
from ._options import (
    ContextMode,
    ContextOption,
    CoreSubmit,
    TaskOptions,
    check_context,
    check_context_mode,
    check_deadline,
    check_task_name,
    check_timeout_option,
    submit_with_defaults,
)
from ._process import track
from ._report import ShutdownReport
from ._stats import PoolStats
from ._threads import ThreadCore

__all__ = ["ThreadPoolExecutor"]

P = ParamSpec("P")
T = TypeVar("T")

_pool_numbers = itertools.count()


# The ignore: StandardNames turns the standard pool's private attributes into read-only views.
class ThreadPoolExecutor(StandardNames, concurrent.futures.ThreadPoolExecutor):  # type: ignore[misc,override]
    """A thread pool with bounded admission, scaling, exact counters and drain shutdown.

    It subclasses ``concurrent.futures.ThreadPoolExecutor`` for type identity only (so
    ``asyncio`` accepts it as an executor) and shares none of its internals; the private
    names that real code reads on the standard pool are views of its own state (``_compat``).

    Args:
        max_workers: The most threads run at once. ``None`` means the standard library's
            default for the running Python (or ``min_workers``, if that is larger).
        thread_name_prefix: Threads are named ``<prefix or name>_<n>``; ``None`` is ``""``.
        initializer: Called with ``initargs`` once in every new thread. If it raises, the
            pool is broken: pending and later tasks fail with ``BrokenThreadPool``.
        initargs: Arguments for ``initializer``.
        min_workers: Threads started at construction that never retire.
        max_queue_size: The most accepted tasks waiting for a thread; 0 is unbounded.
        submit_timeout: How long ``submit`` waits for room when the queue is full:
            ``None`` waits as long as it takes, 0 fails at once, more waits that long.
            Then it raises ``PoolOverloaded``.
        idle_timeout: Seconds after which an idle thread above ``min_workers`` exits;
            ``None`` keeps idle threads forever.
        name: The pool's name in logs, errors and metrics; defaults to
            ``thread_name_prefix`` or ``"ThreadPoolExecutor-<k>"``.
        failure_history: How many ``TaskFailure`` records ``recent_failures()`` keeps;
            0 keeps none.
        on_task_error: Called with the ``TaskFailure`` of every failed task, on the
            worker thread, before the task's future resolves. If it raises, that is
            logged and the worker carries on.
        histogram_buckets: Upper bounds, in seconds, of the buckets of the queue-wait
            and run-time histograms; ``None`` spans 10 microseconds to 5 minutes.
        task_timeout: Each task's default timeout in seconds from submission (see
            ``options()``); ``None`` or ``math.inf``: no deadline.
        overflow: What ``submit`` does when ``submit_timeout`` runs out (at once for 0):
            ``"reject"`` raises ``PoolOverloaded``; ``"caller_runs"`` runs the task in the
            submitting thread and returns its finished future (refused on a thread that
            runs an asyncio event loop); ``"drop_oldest"`` cancels the oldest queued task
            and queues this one. ``try_submit`` always raises, and ``map`` always waits.
        max_waiting_submitters: The most callers that may wait for room at once; the
            next one gets ``PoolOverloaded`` at once (``map`` still waits). ``None``: any.
        context: "thread" runs tasks in the worker thread's own context, as the standard
            library does (threads start with an empty one); "copy" runs each task in a copy
            of its submitter's context, taken at submission.

    Raises:
        ValueError: A limit or timeout is out of range.
        TypeError: A value has the wrong type, or ``initializer`` is not callable.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str | None = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        min_workers: int = 0,
        max_queue_size: int = 0,
        submit_timeout: float | None = None,
        idle_timeout: float | None = 60.0,
        name: str | None = None,
        failure_history: int = 100,
        on_task_error: Callable[[TaskFailure], object] | None = None,
        histogram_buckets: Sequence[float] | None = None,
        task_timeout: float | None = None,
        context: ContextMode = "thread",
        max_waiting_submitters: int | None = None,
        overflow: Literal["reject", "caller_runs", "drop_oldest"] = "reject",
    ) -> None:
        # super().__init__() is deliberately not called: this class owns all its state.
        low, high = check_limits(min_workers, max_workers)
        capacity = check_count("max_queue_size", max_queue_size, minimum=0)
        self._submit_timeout = check_timeout("submit_timeout", submit_timeout, allow_zero=True)
        idle = check_timeout("idle_timeout", idle_timeout, allow_zero=False)
        # The standard library's parameters accept what it accepts: None means "".
        prefix = check_name("thread_name_prefix", thread_name_prefix or "", allow_empty=True)
        init, args = check_initializer(initializer, initargs)
        history = check_count("failure_history", failure_history, minimum=0)
        if on_task_error is not None and not callable(on_task_error):
            raise TypeError("on_task_error must be a callable or None")
        buckets = check_buckets(histogram_buckets)
        self._task_timeout = check_timeout_option("task_timeout", task_timeout)
        if not isinstance(overflow, str):
            raise TypeError(f"overflow must be a str, not {type(overflow).__name__}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        max_waiting = (
            None
            if max_waiting_submitters is None
            else check_count("max_waiting_submitters", max_waiting_submitters, minimum=1)
        )
        self._context: ContextMode = check_context_mode(context)
        if name is None:
            name = prefix or f"ThreadPoolExecutor-{next(_pool_numbers)}"
        else:
            check_name("name", name, allow_empty=False)
        self._core = core = ThreadCore(
            name=name,
            thread_prefix=prefix or name,
            min_workers=low,
            max_workers=high,
            capacity=capacity,
            max_waiting=max_waiting,
            overflow=overflow,
            idle_timeout=idle,
            initializer=init,
            initargs=args,
            failure_history=history,
            on_task_error=on_task_error,
            histogram_buckets=buckets,
        )
        track(core)
        # What submit and try_submit hand a task to: the core itself, unless every task
        # needs a Task around it. Decided once, so a pool without defaults pays nothing.
        self._submit: CoreSubmit = core.submit
        if self._context != "thread" or self._task_timeout not in (None, math.inf):
            self._submit = submit_with_defaults(
                core.submit, self._context, self._task_timeout, core.deadlines.watch
            )
        # When this object is collected without shutdown(), the threads drain and exit.
        # The weakref lives on the core, not here: a weakref that dies in the same cyclic
        # collection as its referent never calls back.
        core.owner = weakref.ref(self, lambda _: core.abandon())
        wrap_like_standard_submit(self)  # tracing installed on the standard pool's submit
        core.start_min_workers()

    @property
    def name(self) -> str:
        """The pool's name, as used in thread names, logs, errors and metrics."""
        return self._core.name

    @property
    def context(self) -> ContextMode:
        """Where tasks run by default: "thread" (the worker's context) or "copy"."""
        return self._context

    @property
    def task_timeout(self) -> float | None:
        """Each task's default timeout, in seconds from submission; None: no deadline."""
        return self._task_timeout

    def options(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        context: ContextOption | None = None,
        name: str | None = None,
    ) -> TaskOptions:
        """Returns a view of this pool whose ``submit``, ``try_submit`` and ``map`` apply
        these options to each task; the pool (threads, queue, counters) is shared.

        A task past its deadline never starts if still queued; if running, its future
        fails with ``TaskTimeout`` at the deadline and its handle is cancelled (see
        ``current_task()``). Either way it counts in ``stats().expired``.

        Args:
            timeout: Seconds from submission to the task's deadline; ``None``: the pool's
                ``task_timeout``; ``math.inf``: no deadline.
            deadline: The deadline itself, a ``time.monotonic()`` value.
            context: "thread" runs the task in the worker thread's context, "copy" in a copy
                of the submitter's context taken at submission; a ``contextvars.Context``
                runs it in a copy of that context. ``None``: the pool's ``context``.
            name: The task's name in ``TaskFailure.task`` and in log records; ``None``: the
                callable's qualified name.

        Raises:
            ValueError: Both ``timeout`` and ``deadline``; a negative or NaN one; an
                unknown ``context`` string; an empty ``name``.
            TypeError: A value of the wrong type.
        """
        return TaskOptions(
            self,
            self._core.deadlines.watch,
            context=check_context(context),
            name=check_task_name(name),
            timeout=check_timeout_option("timeout", timeout),
            deadline=check_deadline(deadline),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedules ``fn(*args, **kwargs)`` and returns its future.

        When every thread is busy and the queue is full, waits for room as
        ``submit_timeout`` says.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: There was no room within ``submit_timeout``.
            RuntimeError: The pool has been shut down.
            BrokenThreadPool: An initializer failed.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, self._submit_timeout)

    def try_submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Like ``submit``, but never waits: ``PoolOverloaded`` at once if there is no room.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: No thread is free and the queue is full.
            RuntimeError: The pool has been shut down.
            BrokenThreadPool: An initializer failed.
        """
        if not callable(fn):
            raise TypeError(f"try_submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, TRY_ONLY)

    async def asubmit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``submit`` for coroutines: waits for room without blocking the event loop, in
        one FIFO line with blocked threads, then returns the task's future.

        Cancelling the awaiting coroutine before the task is accepted submits nothing.
        Raises as ``submit`` does, ``overflow="caller_runs"`` refused (``PoolOverloaded``):
        running the task on the loop's thread would freeze the loop.
        """
        if not callable(fn):
            raise TypeError(f"asubmit() needs a callable, not {type(fn).__name__}")
        from ._aio import submit_async  # not at import: it imports asyncio

        return await submit_async(self._core, lambda: self.submit(fn, *args, **kwargs))

    async def arun(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``asubmit``, then awaits the task's result. Cancelling the awaiting coroutine
        after the task was accepted cancels it if still queued, or requests its
        cancellation (``current_task()``) if it runs."""
        from ._aio import run_async

        return await run_async(await self.asubmit(fn, *args, **kwargs))

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Returns ``fn`` applied to the items of ``iterables``, in input order.

        It waits for room in a full queue (it never raises ``PoolOverloaded``). With
        ``buffersize=N`` at most N tasks run ahead of the consumer and the input is read
        lazily, so an endless iterable needs bounded memory.

        Args:
            fn: Called with one item from each iterable.
            iterables: The inputs, zipped.
            timeout: Seconds from this call after which taking a result raises
                ``TimeoutError``; the tasks not yet finished are then cancelled.
            chunksize: Accepted for compatibility; threads take one item at a time.
            buffersize: The most tasks submitted ahead of the consumer.

        Raises:
            TypeError, ValueError: An argument is invalid.
            RuntimeError: The pool has been shut down.
        """

        # Through self.submit, as the standard library does, so that a subclass or a
        # wrapper of submit (tqdm's progress bar, OpenTelemetry's context) sees every task.
        # (Holding self also keeps the pool alive as long as a lazy map needs it.)
        def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
            return self.submit(fn, *args)  # looked up per item, as the standard map does

        return map_results(waiting_for_room(submit), fn, iterables, timeout, chunksize, buffersize)

    # The ignore: the standard pool's shutdown() returns None; this one returns a report,
    # which code written for the standard pool simply does not look at.
    def shutdown(  # type: ignore[override]
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        drain: bool = True,
        timeout: float | None = None,
    ) -> ShutdownReport:
        """Stops accepting tasks and lets the threads exit once the work is done.

        Calling it again is harmless. It never deadlocks, not even from a task or a
        done-callback (it then waits for every *other* thread).

        Args:
            wait: Return only when every worker thread has exited (or ``timeout`` ran out).
            cancel_futures: Cancel the tasks that have not started (as ``drain=False``).
            drain: Run every accepted task, the queued ones included. With ``False`` the
                queued tasks are cancelled; running tasks always finish.
            timeout: With ``wait``, wait at most this many seconds; then cancel the tasks
                still queued and request the cancellation of those still running (their
                handles are cancelled), and return. ``None`` waits as long as it takes.

        Returns:
            A ``ShutdownReport``: ``timed_out``, the tasks it cancelled (``dropped``, to
            persist or resubmit) and the names of those still ``running``.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
        """
        limit = check_timeout("timeout", timeout, allow_zero=True)
        return self._core.shutdown(wait=wait, cancel=cancel_futures or not drain, timeout=limit)

    def resize(self, *, min_workers: int | None = None, max_workers: int | None = None) -> None:
        """Changes the thread limits at run time; ``None`` keeps a limit as it is.

        Growing starts threads for queued work (and up to the new ``min_workers``) at
        once. Shrinking retires surplus idle threads now and busy ones after their task.

        Raises:
            ValueError: A limit is out of range, or ``min_workers > max_workers``.
            TypeError: A limit is not an int.
            RuntimeError: The pool has been shut down.
        """
        if min_workers is not None:
            check_count("min_workers", min_workers, minimum=0)
        if max_workers is not None:
            check_count("max_workers", max_workers, minimum=1)
        self._core.resize(min_workers, max_workers)

    def recent_failures(self) -> list[TaskFailure]:
        """Returns the newest ``TaskFailure`` records, oldest first.

        At most ``failure_history`` are kept; the records hold no frame of the failed
        tasks, so keeping them keeps no task's local variables alive.
        """
        return self._core.recent_failures()

    def stats(self) -> PoolStats:
        """Returns one consistent snapshot of the pool's threads, queue and counters."""
        return self._core.snapshot()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # After Ctrl-C nobody wants to wait for a long queue to drain: cancel what has
        # not started and wait only for the running tasks (a second Ctrl-C stops that).
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self.shutdown(wait=True, cancel_futures=interrupted)

    def __repr__(self) -> str:
        s = self.stats()
        capacity = s.queue_capacity or "unbounded"
        return (
            f"<{type(self).__name__} {self.name!r} workers={s.workers}/{s.max_workers} "
            f"active={s.active} queued={s.queued}/{capacity} expired={s.expired} "
            f"overrunning={s.overrunning}>"
        )
