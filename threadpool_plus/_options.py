"""Per-task options: deadline, context and name, pool-wide or per call.

``pool.options(...)`` returns a ``TaskOptions`` view; its ``submit`` turns the callable into
a ``Task`` and hands that to the pool's own ``submit`` (so whatever wraps or overrides the
pool's ``submit`` sees it too), then tracks it: attaches its handle to the future and, with
a deadline, hands it to the pool's deadline watcher. A pool whose defaults need no ``Task``
(``context="thread"``, no ``task_timeout``) submits bare callables: options cost nothing
until used.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from time import monotonic
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, Union

from ._admission import async_scope
from ._future import TrackedFuture as TaskFuture
from ._map import map_results, waiting_for_room
from ._task import Task

__all__ = [
    "ContextMode",
    "CoreSubmit",
    "TaskOptions",
    "check_context",
    "check_context_mode",
    "check_deadline",
    "check_task_name",
    "check_timeout_option",
    "submit_with_defaults",
]

P = ParamSpec("P")
T = TypeVar("T")

ContextMode = Literal["thread", "copy"]
ContextOption = Union[ContextMode, contextvars.Context]  # a runtime alias: no | on 3.10
CONTEXT_MODES = ("thread", "copy")

CoreSubmit = Callable[
    [Callable[..., Any], tuple[Any, ...], dict[str, Any], "float | None"], Future[Any]
]
Watch = Callable[[float, Any, "float | None"], None]  # Deadlines.watch


def check_context_mode(value: object) -> ContextMode:
    """The pool-wide ``context``: "thread" or "copy" (a ``Context`` object is per call)."""
    if isinstance(value, contextvars.Context):
        raise TypeError(
            "a contextvars.Context is accepted per call, in pool.options(context=...); "
            'the pool-wide context is "thread" or "copy"'
        )
    if not isinstance(value, str):
        raise TypeError(f'context must be "thread" or "copy", not {type(value).__name__}')
    if value not in CONTEXT_MODES:
        raise ValueError(f'context must be "thread" or "copy", not {value!r}')
    return "copy" if value == "copy" else "thread"


def check_context(value: object) -> ContextOption | None:
    """A per-call ``context``: None (the pool's), "thread", "copy" or a ``Context``."""
    if value is None or isinstance(value, contextvars.Context):
        return value
    if not isinstance(value, str):
        raise TypeError(
            'context must be "thread", "copy", a contextvars.Context or None, '
            f"not {type(value).__name__}"
        )
    return check_context_mode(value)


def check_task_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"name must be a str or None, not {type(value).__name__}")
    if not value:
        raise ValueError("name must not be empty")
    return value


def check_timeout_option(name: str, value: object) -> float | None:
    """A task timeout in seconds: None (the default), a number >= 0, or ``math.inf`` for
    no deadline at all."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 seconds (math.inf: no deadline), not {value!r}")
    return float(value)


def check_deadline(value: object) -> float | None:
    """A deadline: a ``time.monotonic()`` value, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"deadline must be a time.monotonic() value or None, not {type(value).__name__}"
        )
    if math.isnan(value):
        raise ValueError("deadline must not be NaN")
    return float(value)


def deadline_after(timeout: float | None) -> float | None:
    """The deadline of a task submitted now with ``timeout`` (None or inf: none)."""
    if timeout is None or timeout == math.inf:
        return None
    return monotonic() + timeout


def track(future: Future[Any], task: Task, watch: Watch, timeout: float | None) -> None:
    """Once ``task`` is accepted: it is its future's handle (for cancel(interrupt=True);
    nobody but the submitter has the future yet, so a plain store will do), and its deadline
    is watched. Never before acceptance: the watcher would count a task still waiting for
    room (``asubmit``) as running."""
    future._handle = task  # type: ignore[attr-defined]
    if task.deadline is not None:
        watch(task.deadline, future, timeout)


def submit_with_defaults(
    submit: CoreSubmit, context: ContextMode, timeout: float | None, watch: Watch
) -> CoreSubmit:
    """``submit`` for a pool whose defaults need a ``Task`` around every task
    (``context="copy"``, a ``task_timeout``). A ``Task`` from a view passes through: the
    view made it with these defaults already, and tracks it itself."""
    copy = context == "copy"
    if timeout == math.inf:
        timeout = None

    def submit_task(
        fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wait: float | None
    ) -> Future[Any]:
        if fn.__class__ is Task:
            return submit(fn, args, kwargs, wait)
        deadline = None if timeout is None else monotonic() + timeout
        task = Task(fn, None, contextvars.copy_context() if copy else None, deadline)
        future = submit(task, args, kwargs, wait)
        waiter = async_scope.waiter
        if waiter is not None and waiter.item[0] is future:  # asubmit's, still in line
            waiter.admitted = lambda: track(future, task, watch, timeout)
        else:
            track(future, task, watch, timeout)
        return future

    return submit_task


class Pool(Protocol):
    """What a view needs of its pool (the executor, which imports this module)."""

    @property
    def context(self) -> ContextMode: ...

    @property
    def task_timeout(self) -> float | None: ...

    _core: Any  # the pool's core, for asubmit's wait for room

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]: ...

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...


class TaskOptions:
    """A light view of a pool that submits with options; the pool itself is shared."""

    __slots__ = ("_context", "_deadline", "_name", "_pool", "_timeout", "_watch")

    def __init__(
        self,
        pool: Pool,
        watch: Watch,
        *,
        context: ContextOption | None,
        name: str | None,
        timeout: float | None,
        deadline: float | None,
    ) -> None:
        if timeout is not None and deadline is not None:
            raise ValueError("give timeout or deadline, not both")
        self._pool = pool
        self._watch = watch  # the pool's deadline watcher
        self._name = name  # None: the callable's qualified name
        # Resolved now, against the pool's defaults (fixed at its construction), so that
        # each submit does the least: None (the thread's context), "copy" or a Context.
        if context is None:
            context = pool.context
        self._context = None if context == "thread" else context
        self._deadline = deadline
        if deadline is None and timeout is None:
            timeout = pool.task_timeout
        self._timeout = None if timeout == math.inf else timeout  # None: no deadline

    def _make(self, fn: Callable[..., Any], method: str) -> Task:
        """``fn`` wrapped as a ``Task`` with these options."""
        if not callable(fn):
            raise TypeError(f"{method}() needs a callable, not {type(fn).__name__}")
        context = self._context
        if context is not None:
            # A copy per task: one Context cannot be entered by two threads at once.
            context = contextvars.copy_context() if context == "copy" else context.copy()
        timeout = self._timeout
        deadline = self._deadline if timeout is None else monotonic() + timeout
        return Task(fn, self._name, context, deadline)

    def _track(self, future: Future[Any], task: Task) -> TaskFuture[Any]:
        track(future, task, self._watch, self._timeout)
        return future  # type: ignore[return-value]  # the pool's own future class

    def _submit(
        self,
        submit: Callable[..., Future[Any]],
        method: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> TaskFuture[Any]:
        """Wraps ``fn`` with these options, submits it through the pool's ``submit`` (or
        ``try_submit``) and tracks it."""
        task = self._make(fn, method)
        return self._track(submit(task, *args, **kwargs), task)

    async def asubmit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> TaskFuture[T]:
        """The pool's ``asubmit``, with these options."""
        from ._aio import submit_async  # not at import: it imports asyncio

        task = self._make(fn, "asubmit")
        pool = self._pool
        future = await submit_async(pool._core, lambda: pool.submit(task, *args, **kwargs))
        return self._track(future, task)  # tracked once accepted, not while it waits

    async def arun(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """The pool's ``arun``, with these options."""
        from ._aio import run_async

        return await run_async(await self.asubmit(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]:
        """The pool's ``submit``, with these options. Typed as ``TaskFuture`` (whose
        ``cancel`` takes ``interrupt=``); the pool's own ``submit`` is typed as the standard
        pool's, so that subclasses overriding it keep type-checking."""
        return self._submit(self._pool.submit, "submit", fn, args, kwargs)

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> TaskFuture[T]:
        """The pool's ``try_submit``, with these options."""
        return self._submit(self._pool.try_submit, "try_submit", fn, args, kwargs)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """The pool's ``map``, with these options for every item (``timeout`` is ``map``'s
        own: how long the caller waits for results)."""

        def submit(_: Callable[..., T], *args: Any) -> Future[T]:
            # A Task per item: its context copied and its deadline set at its submission.
            return self._submit(self._pool.submit, "map", fn, args, {})

        return map_results(waiting_for_room(submit), fn, iterables, timeout, chunksize, buffersize)

    def __repr__(self) -> str:
        return (
            f"<TaskOptions of {self._pool!r} context={self._context!r} name={self._name!r} "
            f"timeout={self._timeout!r} deadline={self._deadline!r}>"
        )
