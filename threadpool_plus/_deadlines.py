"""The pool's deadline watcher: one thread, started by the first task with a deadline,
asleep until the earliest deadline; no timer per task.

At a task's deadline it calls ``expire(future, task)`` (the pool's ``expire_task``): a task
still queued leaves the queue for ``expired``, a running one is counted ``overrunning`` and
its handle cancelled; either way its future fails with ``TaskTimeout``. The watcher is never
the only guard: a worker that reaches a queued task past its deadline expires it instead of
running it, so a late watcher (a busy machine) never lets an expired task start.

It holds each task's future by weak reference (the future holds its ``Task``, as its
handle): a task that finished long before its deadline (the common case) leaves nothing
alive here but a small heap entry, and the heap is compacted whenever it doubles. The
thread ends once the pool is closed and nothing is left to watch; after ``os.fork()`` the
child's watcher starts afresh.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import weakref
from collections.abc import Callable
from time import monotonic
from typing import Any

from ._lean_future import PENDING, RUNNING
from ._task import Task

__all__ = ["Deadlines"]

_Entry = tuple[float, int, "weakref.ref[Any]"]  # (deadline, order, the task's future)
_LIVE = (PENDING, RUNNING)
_COMPACT_FLOOR = 1024  # heap entries below which compaction is not worth it


class Deadlines:
    """Watches a pool's task deadlines."""

    __slots__ = (
        "_asleep",
        "_closed",
        "_compact_at",
        "_expire",
        "_heap",
        "_lock",
        "_name",
        "_sequence",
        "_sleeper",
        "_thread",
    )

    def __init__(
        self, name: str, expire: Callable[[Any, Task], None], closed: Callable[[], bool]
    ) -> None:
        self._name = name
        self._expire = expire  # the pool's expire_task; takes the pool's lock
        self._closed = closed  # whether the pool accepts no more work
        self.reset()

    def reset(self) -> None:
        """Forgets everything (construction, and a forked child, where no thread runs)."""
        # Lock order: the pool's lock, then this one; _expire runs with neither held. A raw
        # lock and a sleeper rather than a Condition: watch() is on every submit of a task
        # with a deadline, and a Condition's Python-level methods would double its cost.
        self._lock = threading.Lock()
        self._heap: list[_Entry] = []  # guarded by _lock
        self._sequence = itertools.count()  # ties: first submitted, first expired
        self._thread: threading.Thread | None = None  # guarded by _lock
        self._compact_at = _COMPACT_FLOOR  # guarded by _lock
        self._asleep = False  # the watcher sleeps on _sleeper; guarded by _lock
        self._sleeper = threading.Lock()
        self._sleeper.acquire()  # held except while a wake-up is pending

    def watch(self, deadline: float, future: Any, task: Task) -> None:
        """Expires ``task`` (whose future is ``future``, with ``task`` as its handle) at
        ``deadline`` unless done."""
        entry = (deadline, next(self._sequence), weakref.ref(future))
        with self._lock:
            heap = self._heap
            heapq.heappush(heap, entry)
            if len(heap) >= self._compact_at:
                self._compact()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-deadlines", daemon=True
                )
                self._thread.start()
            elif heap[0] is entry:  # a new earliest deadline: sleep less
                self._wake_locked()

    def wake(self) -> None:
        """Makes the watcher look again (the pool closed, or its last thread exited)."""
        with self._lock:
            self._wake_locked()

    def _wake_locked(self) -> None:
        if self._asleep:
            self._asleep = False
            self._sleeper.release()

    def _compact(self) -> None:
        """Drops the entries of finished tasks. Lock held."""
        self._heap = [entry for entry in self._heap if _pending(entry)]
        heapq.heapify(self._heap)
        self._compact_at = max(_COMPACT_FLOOR, 2 * len(self._heap))

    def _run(self) -> None:
        while True:
            due = self._due()
            if due is None:
                return
            for future, task in due:  # without the lock: expire takes the pool's
                self._expire(future, task)
            del due

    def _due(self) -> list[tuple[Any, Task]] | None:
        """Sleeps until some task is due; returns those, or None once there is nothing
        left to watch in a closed pool (the thread then ends)."""
        while True:
            with self._lock:
                heap = self._heap
                now = monotonic()
                due: list[tuple[Any, Task]] = []
                while heap and (heap[0][0] <= now or not _pending(heap[0])):
                    future = heapq.heappop(heap)[2]()
                    if future is not None and future._state in _LIVE:
                        due.append((future, future._handle))
                if due:
                    return due
                if self._closed():
                    self._compact()  # what is left may all be finished
                    if not self._heap:
                        self._thread = None  # the next watch() starts another
                        return None
                self._asleep = True
                wait = heap[0][0] - now if heap else -1
            woken = self._sleeper.acquire(timeout=wait)
            with self._lock:
                if self._asleep:  # timed out, and nobody woke it
                    self._asleep = False
                elif not woken:  # woken just after it timed out: make the next sleep sleep
                    self._sleeper.acquire()


def _pending(entry: _Entry) -> bool:
    """Whether the entry's task may still need expiring."""
    future = entry[2]()
    return future is not None and future._state in _LIVE
