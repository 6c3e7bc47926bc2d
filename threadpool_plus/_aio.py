"""asyncio admission: ``asubmit`` waits for room without blocking the event loop, in the same
FIFO line as blocked threads; ``arun`` also awaits the result.

``submit`` does the work: ``async_scope`` tells it (on the full-pool path only) to leave an
``AsyncWaiter`` in line instead of blocking, and this module awaits that waiter in the loop.
So subclasses and wrappers of ``submit`` see ``asubmit``'s tasks too, and a task is accepted
exactly as from a thread: admitted in line, counted once, or refused. The pool imports this
module on the first ``asubmit``, so that importing the pool does not import asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from ._admission import AsyncWaiter, Overflow, async_scope
from ._errors import PoolOverloaded

if TYPE_CHECKING:
    from ._pool import PoolCore

__all__ = ["run_async", "submit_async"]

T = TypeVar("T")


async def submit_async(core: PoolCore, submit: Callable[[], Future[T]]) -> Future[T]:
    """Calls ``submit`` (the pool's, or a view's) so that a full pool puts this coroutine in
    line rather than blocking the loop; returns the future once the task is accepted."""
    loop = asyncio.get_running_loop()
    scope = async_scope
    outer = scope.loop, scope.waiter
    scope.loop, scope.waiter = loop, None
    try:
        future = submit()
        waiter = scope.waiter
    finally:
        scope.loop, scope.waiter = outer
    if waiter is not None:
        await _admitted(core, waiter)
    return future


async def run_async(future: Future[T]) -> T:
    """Awaits an accepted task's result. Cancelling the awaiting coroutine cancels the task
    if it is still queued, or requests its cancellation if it runs."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel(interrupt=True)  # type: ignore[call-arg]  # the pool's TaskFuture
        raise


async def _admitted(core: PoolCore, waiter: AsyncWaiter) -> None:
    """Waits, in the loop, until ``waiter`` is admitted; raises as ``submit`` would if it is
    refused or its timeout runs out (after the overflow policy)."""
    try:
        if waiter.timeout is None:
            await waiter.done
        else:
            await asyncio.wait_for(waiter.done, waiter.timeout)
    except (asyncio.TimeoutError, TimeoutError):  # two classes on 3.10
        outcome = core._timed_out(waiter)
        if outcome is False:
            raise PoolOverloaded(core.name, core.capacity) from None
        if isinstance(outcome, Overflow):
            core._overflowed(outcome)  # "drop_oldest"; "caller_runs" refuses in a loop
    except asyncio.CancelledError:
        with core.guarded("asubmit"):
            withdrawn = core._withdraw(waiter)
        if not withdrawn and not waiter.refused:
            # Admitted just as the coroutine was cancelled: nobody will ever see this
            # future, so its task must not run either.
            waiter.item[0].cancel()
        raise
    if waiter.refused:
        raise waiter.error or core._refusal()
    if waiter.admitted is not None:
        waiter.admitted()
