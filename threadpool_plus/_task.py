"""A task submitted with options: its callable, its name and the context it runs in.

A task submitted without options is its bare callable: the hot path wraps nothing. Options
turn it into a ``Task``, which the worker calls like any callable, so the worker loop does
not change for them either.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

__all__ = ["Task"]


class Task:
    """Calls ``fn`` in ``context`` (a private copy, entered by this task alone), or in the
    worker thread's own context when ``context`` is None."""

    __slots__ = ("context", "fn", "name")

    def __init__(
        self, fn: Callable[..., Any], name: str | None, context: contextvars.Context | None
    ) -> None:
        self.fn = fn
        self.name = name  # None: the callable's qualified name, worked out when needed
        self.context = context

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        context = self.context
        if context is None:
            return self.fn(*args, **kwargs)
        return context.run(self.fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name or self.fn!r}>"
