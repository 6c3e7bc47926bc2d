"""Errors raised by threadpool_plus.

The hierarchy, with the standard library's classes it reuses::

    RuntimeError
    ├── PoolOverloaded          the queue is full and the caller would not wait (longer)
    └── concurrent.futures.BrokenExecutor
        └── concurrent.futures.thread.BrokenThreadPool
                                an initializer failed; the pool accepts nothing more

``submit()`` after ``shutdown()`` raises a plain ``RuntimeError`` with the standard
library's message, so code written for ``concurrent.futures`` keeps working.
"""

from __future__ import annotations

from concurrent.futures.thread import BrokenThreadPool

__all__ = ["BrokenThreadPool", "PoolOverloaded"]

# The standard library's exact words: callers match on them.
SHUTDOWN_MESSAGE = "cannot schedule new futures after shutdown"
EXIT_MESSAGE = "cannot schedule new futures after interpreter shutdown"
BROKEN_MESSAGE = "A thread initializer failed, the thread pool is not usable anymore"


class PoolOverloaded(RuntimeError):
    """The pool could not accept a task: no worker was free and its queue was full.

    Raised by ``submit()`` once ``submit_timeout`` has run out and at once by
    ``try_submit()``. The rejected task never runs; it is counted in
    ``stats().rejected``.

    Attributes:
        pool_name: The name of the pool that refused the task.
        capacity: The pool's queue capacity (``max_queue_size``).
    """

    def __init__(self, pool_name: str, capacity: int) -> None:
        self.pool_name = pool_name
        self.capacity = capacity
        super().__init__(
            f"pool {pool_name!r} is overloaded: all workers are busy and its queue "
            f"is full (capacity {capacity})"
        )

    def __reduce__(self) -> tuple[type[PoolOverloaded], tuple[str, int]]:
        return (type(self), (self.pool_name, self.capacity))
