"""The public ``ThreadPoolExecutor``: a drop-in for ``concurrent.futures``' pool."""

from __future__ import annotations

import concurrent.futures
import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

from ._compat import StandardNames, wrap_like_standard_submit
from ._config import (
    check_count,
    check_initializer,
    check_limits,
    check_name,
    check_timeout,
)
from ._failures import TaskFailure
from ._front import PoolFront, check_settings
from ._options import (
    ContextMode,
    ContextOption,
    TaskOptions,
    check_context,
    check_context_mode,
    check_deadline,
    check_task_name,
    check_timeout_option,
)
from ._process import track
from ._threads import ThreadCore

__all__ = ["ThreadPoolExecutor"]

P = ParamSpec("P")
T = TypeVar("T")

_pool_numbers = itertools.count()


# The ignore: StandardNames turns the standard pool's private attributes into read-only views.
class ThreadPoolExecutor(StandardNames, PoolFront, concurrent.futures.ThreadPoolExecutor):  # type: ignore[misc,override]
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
        settings = check_settings(
            max_queue_size=max_queue_size,
            submit_timeout=submit_timeout,
            overflow=overflow,
            failure_history=failure_history,
            on_task_error=on_task_error,
            histogram_buckets=histogram_buckets,
            task_timeout=task_timeout,
        )
        idle = check_timeout("idle_timeout", idle_timeout, allow_zero=False)
        # The standard library's parameters accept what it accepts: None means "".
        prefix = check_name("thread_name_prefix", thread_name_prefix or "", allow_empty=True)
        init, args = check_initializer(initializer, initargs)
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
            settings=settings,
            max_waiting=max_waiting,
            idle_timeout=idle,
            initializer=init,
            initargs=args,
        )
        track(core)
        self._open_front(core.submit, settings, self._context, core.deadlines.watch)
        # When this object is collected without shutdown(), the threads drain and exit.
        # The weakref lives on the core, not here: a weakref that dies in the same cyclic
        # collection as its referent never calls back.
        core.owner = weakref.ref(self, lambda _: core.abandon())
        wrap_like_standard_submit(self)  # tracing installed on the standard pool's submit
        core.start_min_workers()

    @property
    def context(self) -> ContextMode:
        """Where tasks run by default: "thread" (the worker's context) or "copy"."""
        return self._context

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

    def __repr__(self) -> str:
        s = self.stats()
        capacity = s.queue_capacity or "unbounded"
        return (
            f"<{type(self).__name__} {self.name!r} workers={s.workers}/{s.max_workers} "
            f"active={s.active} queued={s.queued}/{capacity} expired={s.expired} "
            f"overrunning={s.overrunning}>"
        )
