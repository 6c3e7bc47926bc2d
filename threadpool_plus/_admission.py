"""Waiting for room: callers blocked in ``submit`` while every thread is busy and the queue
is full.

A waiter parks its task, not itself: whoever makes room (a worker taking the next queued
task, a ``resize`` that starts threads) moves the oldest waiters' tasks into the queue under
the lock, counts them as accepted and only then wakes their callers, one private lock each.
So room is handed over in FIFO order, exactly one slot per waiter, with no thundering herd
and no window in which a newcomer steals the slot of a caller that was woken for it. A
waiter that times out or is interrupted takes itself out of the line under the lock, unless
its task was admitted first (then the task runs, as in the standard pool).

Invariant (under the lock): ``waiters`` is non-empty only while the queue is full, so the
submit fast path, which never looks at ``waiters``, cannot overtake anyone.

``map`` waits for room whatever ``submit_timeout`` says (it never raises
``PoolOverloaded``), yet schedules through ``self.submit`` so that whatever wraps or overrides
``submit`` sees its tasks. It marks the calling thread with ``map_scope`` around each call;
only the full-pool path reads the mark, so a task placed at once never pays for it.

The waiter sleeps on its own lock with the pool's lock released and the main thread's
"inside a critical section" flag cleared, so a signal handler may use the pool meanwhile.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ._items import WorkItem
from ._lean_future import sleep_until_released
from ._ledger import Ledger

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = [
    "OVERFLOW_POLICIES",
    "TRY_ONLY",
    "Admission",
    "AsyncWaiter",
    "Overflow",
    "Waiter",
    "async_scope",
    "map_scope",
]

# The timeout ``try_submit`` passes: no wait, not even inside ``map`` (see ``patience``).
TRY_ONLY = -1.0


class _MapScope(threading.local):
    waits = False  # this thread is inside map(): submit waits for room, however configured


map_scope = _MapScope()


def patience(timeout: float | None) -> float | None:
    """How long a caller that found the pool full waits for room: ``None`` for good, 0 not
    at all. ``timeout`` is the pool's ``submit_timeout``, or ``TRY_ONLY``."""
    if timeout is not None and timeout < 0:
        return 0
    return None if map_scope.waits else timeout


class Waiter:
    """A caller waiting for room, with the task it wants queued: a thread, asleep on its
    own lock."""

    __slots__ = ("error", "item", "refused", "sleeper", "timeout")

    def __init__(self, item: WorkItem, timeout: float | None) -> None:
        self.item = item
        self.timeout = timeout  # how long it waits; None: as long as it takes
        # Out of the line and not refused means admitted. Guarded by the pool lock, and
        # set before the waiter is woken.
        self.refused = False  # the pool closed (or could start no thread) while it waited
        self.error: BaseException | None = None  # raised instead of the pool's refusal
        self.sleeper = threading.Lock()
        self.sleeper.acquire()  # released by whoever admits or refuses this waiter

    def wake(self) -> None:
        """Tells the caller it was admitted or refused. Lock held."""
        self.sleeper.release()


class AsyncWaiter(Waiter):
    """A coroutine waiting for room (``asubmit``), in the same line as the threads: woken
    through its event loop, which it never blocks."""

    __slots__ = ("admitted", "done", "loop")

    def __init__(self, item: WorkItem, timeout: float | None, loop: Any) -> None:
        super().__init__(item, timeout)
        self.loop = loop
        self.done = loop.create_future()  # resolved in the loop when woken
        # What the submit that left it in line does once it is accepted (track a deadline).
        self.admitted: Callable[[], None] | None = None

    def wake(self) -> None:
        # One call_soon_threadsafe per coroutine woken; a loop already closed has nobody
        # waiting in it any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_resolve, self.done)


def _resolve(done: Any) -> None:
    if not done.done():
        done.set_result(None)


class _AsyncScope(threading.local):
    loop: Any = None  # set by asubmit around its submit: a full pool makes an AsyncWaiter
    waiter: AsyncWaiter | None = None  # the waiter that submit left for asubmit to await


async_scope = _AsyncScope()


class Overflow(NamedTuple):
    """What the overflow policy asks of the submitting caller, after the lock: cancel the
    task it dropped from the queue (``"drop_oldest"``), or run its own (``"caller_runs"``)."""

    dropped: WorkItem | None
    run: WorkItem | None


OVERFLOW_POLICIES = ("reject", "caller_runs", "drop_oldest")


def _in_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop (which a task run here would
    freeze). asyncio is not imported for this: without it, no loop runs."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio.events._get_running_loop() is not None


class Admission(Ledger):
    """The line of waiting callers: a layer of the pool core, guarded by its lock."""

    __slots__ = (
        "main_waiting",  # written by the main thread only; set up in PoolCore._reset_sync
        "max_waiting",  # max_waiting_submitters; fixed at construction
        "overflow",  # the overflow policy; fixed at construction
        "waiters",
    )

    if TYPE_CHECKING:
        main_waiting: bool  # the type of the slot above
        # Fields of the layer above:
        queue: deque[WorkItem]
        capacity: int

        def _accept_for_caller(self) -> None: ...

        def guarded(self, operation: str) -> AbstractContextManager[None]: ...
        def _refusal(self) -> BaseException: ...

    def _open_admission(self, max_waiting: int | None, overflow: str) -> None:
        self.max_waiting = max_waiting  # None: any number of callers may wait
        self.overflow = overflow
        self.waiters: deque[Waiter] = deque()  # oldest first; guarded by the lock

    def _line_up(self, item: WorkItem, timeout: float | None) -> Waiter | Overflow | bool:
        """A caller found the pool full: puts it in line for room; or, when it will not
        wait (``patience``), applies the overflow policy; or refuses it (False, counted as
        rejected): ``try_submit``, or a line as long as ``max_waiting_submitters`` allows
        (``map``, which never raises, still waits). Lock held."""
        try_only = timeout is not None and timeout < 0
        timeout = patience(timeout)
        if timeout == 0 and not try_only:
            return self._overflow(item)
        if try_only or (
            self.max_waiting is not None
            and len(self.waiters) >= self.max_waiting
            and not map_scope.waits
        ):
            self.rejected += 1
            return False
        loop = async_scope.loop
        if loop is None:
            waiter = Waiter(item, timeout)
        else:  # asubmit: it awaits the waiter itself, after submit returns
            waiter = async_scope.waiter = AsyncWaiter(item, timeout, loop)
        self.waiters.append(waiter)
        return waiter

    def _overflow(self, item: WorkItem) -> Overflow | bool:
        """The policy for a task the full pool cannot take and whose caller waits no
        longer: False (``"reject"``, counted), or what the caller does next. Lock held."""
        if self.overflow == "drop_oldest" and self.queue:
            oldest = self.queue.popleft()
            self.cancelled += 1
            self.dropped += 1
            self.queue.append(item)
            self.submitted += 1
            return Overflow(oldest, None)
        if self.overflow == "caller_runs" and not _in_event_loop():
            self._accept_for_caller()
            return Overflow(None, item)
        self.rejected += 1
        return False

    def _admit_waiters(self) -> None:
        """Moves the oldest waiters' tasks into the queue while it has room. Lock held."""
        waiters = self.waiters
        queue = self.queue
        while waiters and len(queue) < self.capacity:
            waiter = waiters.popleft()
            queue.append(waiter.item)
            self.submitted += 1
            waiter.wake()

    def _refuse_waiters(self, error: Callable[[], BaseException] | None = None) -> None:
        """Wakes every waiter with a refusal: the pool no longer accepts work, or (with
        ``error``) can no longer start a thread. Lock held."""
        for waiter in self.waiters:
            waiter.refused = True
            waiter.error = None if error is None else error()
            waiter.wake()
        self.waiters.clear()

    def _timed_out(self, waiter: Waiter) -> Overflow | bool:
        """A waiter's timeout ran out: out of the line, and the overflow policy decides.
        True if it was admitted (or refused) just before. Takes the lock."""
        with self.guarded("submit"):
            if self._withdraw(waiter):
                return self._overflow(waiter.item)
        return True

    def _withdraw(self, waiter: Waiter) -> bool:
        """Takes a waiter out of the line; False if it was admitted or refused. Lock held."""
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return False
        return True

    def _await_room(self, waiter: Waiter, main: bool) -> Overflow | bool:
        """Blocks, without the lock, until ``waiter`` is admitted (True), refused (raises
        the refusal) or its timeout runs out: then the overflow policy (``_overflow``).

        ``main``: the caller is the main thread, whose signal handlers may run while it
        waits here; ``main_waiting`` tells them (see ``PoolCore.shutdown``).
        """
        if main:
            outer, self.main_waiting = self.main_waiting, True
        try:
            woken = sleep_until_released(waiter.sleeper, waiter.timeout)
        except BaseException:  # interrupted: leave the line, unless admitted already
            with self.guarded("submit"):
                self._withdraw(waiter)
            raise
        finally:
            if main:
                self.main_waiting = outer
        if not woken and (outcome := self._timed_out(waiter)) is not True:
            return outcome
        if waiter.refused:
            raise waiter.error or self._refusal()
        return True
