"""Per-task options: the context a task runs in and its name, pool-wide or per call.

``pool.options(...)`` returns a ``TaskOptions`` view; its ``submit`` turns the callable into
a ``Task`` and hands that to the pool's own ``submit`` (so whatever wraps or overrides the
pool's ``submit`` sees it too). A pool whose defaults need no ``Task`` (``context="thread"``)
submits bare callables: options cost nothing until used.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, Union

from ._map import map_results, waiting_for_room
from ._task import Task

__all__ = ["ContextMode", "TaskOptions", "check_context_mode", "copying_submit"]

P = ParamSpec("P")
T = TypeVar("T")

ContextMode = Literal["thread", "copy"]
ContextOption = Union[ContextMode, contextvars.Context]  # a runtime alias: no | on 3.10
CONTEXT_MODES = ("thread", "copy")

CoreSubmit = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], "float | None"], Any]


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


def copying_submit(submit: CoreSubmit) -> CoreSubmit:
    """``submit`` for a pool with ``context="copy"``: each bare callable runs in a copy of
    its submitter's context; a ``Task`` (from a view) already says where it runs."""

    def submit_in_copy(
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        if fn.__class__ is not Task:
            fn = Task(fn, None, contextvars.copy_context())
        return submit(fn, args, kwargs, timeout)

    return submit_in_copy


class Pool(Protocol):
    """What a view needs of its pool (the executor, which imports this module)."""

    @property
    def context(self) -> ContextMode: ...

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]: ...

    def try_submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...


class TaskOptions:
    """A light view of a pool that submits with options; the pool itself is shared."""

    __slots__ = ("_context", "_name", "_pool")

    def __init__(self, pool: Pool, context: ContextOption | None, name: str | None) -> None:
        self._pool = pool
        self._context = context  # None: the pool's own
        self._name = name

    def _task(self, fn: Callable[..., Any], method: str) -> Task:
        if not callable(fn):
            raise TypeError(f"{method}() needs a callable, not {type(fn).__name__}")
        context = self._context
        if context is None:
            context = self._pool.context
        if context == "thread":
            return Task(fn, self._name, None)
        if context == "copy":
            return Task(fn, self._name, contextvars.copy_context())
        assert isinstance(context, contextvars.Context)
        # A copy per task: one Context cannot be entered by two threads at once.
        return Task(fn, self._name, context.copy())

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """The pool's ``submit``, with these options."""
        return self._pool.submit(self._task(fn, "submit"), *args, **kwargs)

    def try_submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """The pool's ``try_submit``, with these options."""
        return self._pool.try_submit(self._task(fn, "try_submit"), *args, **kwargs)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """The pool's ``map``, with these options for every item."""

        def submit(_: Callable[..., T], *args: Any) -> Future[T]:
            # A Task per item: each copies its context at its own submission.
            return self._pool.submit(self._task(fn, "map"), *args)

        return map_results(waiting_for_room(submit), fn, iterables, timeout, chunksize, buffersize)

    def __repr__(self) -> str:
        return f"<TaskOptions of {self._pool!r} context={self._context!r} name={self._name!r}>"
