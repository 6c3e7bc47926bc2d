"""Errors raised by threadpool_plus.

The hierarchy, with the standard library's classes it reuses::

    RuntimeError
    ├── PoolOverloaded          the queue is full and the caller would not wait (longer)
    └── concurrent.futures.BrokenExecutor
        └── concurrent.futures.thread.BrokenThreadPool
                                an initializer failed; the pool accepts nothing more
    TimeoutError (and concurrent.futures.TimeoutError, a class of its own on 3.10)
    └── TaskTimeout             a task's future failed at the task's deadline
    concurrent.futures.CancelledError
    └── TaskCancelled           raised by a task's handle once cancellation was requested

``submit()`` after ``shutdown()`` raises a plain ``RuntimeError`` with the standard
library's message, so code written for ``concurrent.futures`` keeps working.
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures.thread import BrokenThreadPool

__all__ = ["BrokenThreadPool", "PoolOverloaded", "TaskCancelled", "TaskTimeout"]

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


# On 3.10 concurrent.futures.TimeoutError is not the built-in one: be both, so that code
# catching either (around future.result(), say) catches a task's timeout.
_FUTURES_TIMEOUT: type[Exception] = concurrent.futures.TimeoutError
_TIMEOUT_BASES: tuple[type[Exception], ...] = (
    (TimeoutError,) if _FUTURES_TIMEOUT is TimeoutError else (_FUTURES_TIMEOUT, TimeoutError)
)


class TaskTimeout(*_TIMEOUT_BASES):  # type: ignore[misc]  # (bases chosen per Python)
    """A task's deadline passed before it finished: its future fails with this.

    A task still queued at its deadline never runs; one still running has its cancellation
    requested (``current_task().cancelled``) and its late result is discarded.
    """


class TaskCancelled(concurrent.futures.CancelledError):
    """Raised by ``current_task().check()`` once the task's cancellation was requested."""


def deadline_passed(pool: str, task: str) -> TaskTimeout:
    return TaskTimeout(f"task {task!r} of pool {pool!r} passed its deadline")
