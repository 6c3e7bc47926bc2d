"""A task submitted with options: its callable, the context it runs in and its deadline.

A task submitted without options is its bare callable: the hot path wraps nothing. Options
turn it into a ``Task``, which the worker calls like any callable, so the worker loop does
not change for them either. A ``Task`` is also its own handle (``current_task()``).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from time import monotonic
from typing import Any

from ._handle import TaskHandle, current

__all__ = ["DeadlinePassed", "Task", "task_name"]


def task_name(fn: Callable[..., Any]) -> str:
    """A task's name, else the qualified name of a callable, for records and logs (never
    its arguments)."""
    if isinstance(fn, Task):
        return fn.name
    if isinstance(fn, functools.partial):
        return f"partial({task_name(fn.func)})"
    name = getattr(fn, "__qualname__", None)
    if not isinstance(name, str):
        name = type(fn).__qualname__  # a callable instance
    return name


class DeadlinePassed(BaseException):
    """Raised by a ``Task`` that a worker reached after its deadline: the worker expires it
    instead of running it. Never seen outside the pool."""


class Task(TaskHandle):
    """Calls ``fn`` in ``context`` (a private copy, entered by this task alone), or in the
    worker thread's own context when ``context`` is None."""

    __slots__ = ("context", "fn")

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None,
        context: contextvars.Context | None,
        deadline: float | None = None,
    ) -> None:
        # TaskHandle's fields, set here rather than through super().__init__(): a Task is
        # made per submit, and the call would be a fifth of its cost.
        self._name = name  # None: the callable's qualified name, worked out when asked
        self.deadline = deadline
        self._cancelled = False
        self._callbacks = None
        self._event = None
        self.fn = fn
        self.context = context

    @property
    def name(self) -> str:
        name = self._name
        if name is None:
            name = self._name = task_name(self.fn)
        return name

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        deadline = self.deadline
        if deadline is not None and monotonic() >= deadline:
            raise DeadlinePassed(self)  # a queued task past its deadline never starts
        outer, current.handle = current.handle, self
        try:
            context = self.context
            if context is None:
                return self.fn(*args, **kwargs)
            return context.run(self.fn, *args, **kwargs)
        finally:
            current.handle = outer

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"
