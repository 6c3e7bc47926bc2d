"""The pool's deadline watcher: one thread, started by the first task with a deadline,
asleep until the earliest deadline; no timer per task.

At a task's deadline it calls ``expire(future, task)`` (the pool's ``expire_task``): a task
still queued leaves the queue for ``expired``, a running one is counted ``overrunning`` and
its handle cancelled; either way its future fails with ``TaskTimeout``. The watcher is never
the only guard: a worker that reaches a queued task past its deadline expires it instead of
running it, so a late watcher (a busy machine) never lets an expired task start.

Deadlines given as a timeout (``options(timeout=)``, ``task_timeout``) go into a *lane* per
timeout value: tasks submitted later with the same timeout expire later, so each lane is a
FIFO and watching costs an append, not a heap push. Explicit deadlines
(``options(deadline=)``), and the rare timeout deadline that would be out of order in its
lane (its submit waited for room, or another thread appended first), go into one heap.
Entries hold each task's future by weak reference (the future holds its ``Task``, as its
handle): a task that finished long before its deadline (the common case) leaves only a small
entry, dropped as soon as it reaches the front of its lane, or when the heap compacts
(whenever it doubles). The thread ends once the pool is closed and nothing is left to watch;
after ``os.fork()`` the child's watcher starts afresh.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any

from ._lean_future import PENDING, RUNNING
from ._task import Task

__all__ = ["Deadlines"]

_Entry = tuple[float, int, "weakref.ref[Any]"]  # heap: (deadline, order, the task's future)
_LaneEntry = tuple[float, "weakref.ref[Any]"]  # lane: (deadline, the task's future)
_LIVE = (PENDING, RUNNING)
_COMPACT_FLOOR = 1024  # heap entries below which compaction is not worth it


class Deadlines:
    """Watches a pool's task deadlines. Every field is guarded by ``_lock``."""

    __slots__ = (
        "_asleep",
        "_closed",
        "_compact_at",
        "_expire",
        "_heap",
        "_lanes",
        "_lock",
        "_name",
        "_sequence",
        "_sleeper",
        "_thread",
        "_wake_at",
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
        self._heap: list[_Entry] = []
        self._lanes: dict[float, deque[_LaneEntry]] = {}  # by timeout
        self._sequence = itertools.count()  # heap ties: first submitted, first expired
        self._thread: threading.Thread | None = None
        self._compact_at = _COMPACT_FLOOR
        self._wake_at = math.inf  # when the watcher will look next
        self._asleep = False  # the watcher sleeps on _sleeper
        self._sleeper = threading.Lock()
        self._sleeper.acquire()  # held except while a wake-up is pending

    def watch(self, deadline: float, future: Any, timeout: float | None = None) -> None:
        """Expires the task of ``future`` (its ``_handle``) at ``deadline`` unless done;
        ``timeout``: the deadline is that long after now, as for the lane's other tasks."""
        ref = weakref.ref(future)
        with self._lock:
            lane = None if timeout is None else self._lanes.get(timeout)
            if lane is not None and lane and not _live(lane[0][1]):
                _drop_finished(lane)
            if timeout is not None and (not lane or lane[-1][0] <= deadline):
                if lane is None:
                    lane = self._lanes[timeout] = deque()
                lane.append((deadline, ref))
            else:  # an explicit deadline, or one that would be out of order in its lane
                # (its submit waited for room, or another thread appended first)
                heap = self._heap
                heapq.heappush(heap, (deadline, next(self._sequence), ref))
                if len(heap) >= self._compact_at:
                    self._compact()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-deadlines", daemon=True
                )
                self._thread.start()
            elif deadline < self._wake_at:  # sooner than the watcher will look: wake it
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
        """Drops the heap entries of finished tasks."""
        self._heap = [entry for entry in self._heap if _live(entry[2])]
        heapq.heapify(self._heap)
        self._compact_at = max(_COMPACT_FLOOR, 2 * len(self._heap))

    def _run(self) -> None:
        while True:
            due = self._due()
            if due is None:
                return
            for future in due:  # without the lock: expire takes the pool's
                self._expire(future, future._handle)
            del due

    def _due(self) -> list[Any] | None:
        """Sleeps until some task is due; returns their futures, or None once there is
        nothing left to watch in a closed pool (the thread then ends)."""
        while True:
            with self._lock:
                now = monotonic()
                due = self._take_due(now)
                if due:
                    return due
                if self._closed():
                    self._compact()  # what is left may all be finished
                    for timeout, lane in list(self._lanes.items()):
                        lane = deque(entry for entry in lane if _live(entry[1]))
                        self._lanes[timeout] = lane
                        if not lane:
                            del self._lanes[timeout]
                    if not self._heap and not self._lanes:
                        self._thread = None  # the next watch() starts another
                        return None
                self._wake_at = self._earliest()
                self._asleep = True
                wait = -1 if self._wake_at == math.inf else max(0.0, self._wake_at - now)
            woken = self._sleeper.acquire(timeout=wait)
            with self._lock:
                self._wake_at = -math.inf  # awake: it looks at all before it sleeps again
                if self._asleep:  # timed out, and nobody woke it
                    self._asleep = False
                elif not woken:  # woken just after it timed out: make the next sleep sleep
                    self._sleeper.acquire()

    def _take_due(self, now: float) -> list[Any]:
        """Takes the entries due by ``now`` (and finished ones in front) off the heap and
        the lanes; returns the futures still to expire."""
        due: list[Any] = []
        heap = self._heap
        while heap and (heap[0][0] <= now or not _live(heap[0][2])):
            _collect(heapq.heappop(heap)[2], due)
        for timeout, lane in list(self._lanes.items()):
            while lane and (lane[0][0] <= now or not _live(lane[0][1])):
                _collect(lane.popleft()[1], due)
            if not lane:
                del self._lanes[timeout]
        return due

    def _earliest(self) -> float:
        """The earliest deadline watched (every lane and the heap start with a live one)."""
        heads = [lane[0][0] for lane in self._lanes.values()]
        if self._heap:
            heads.append(self._heap[0][0])
        return min(heads, default=math.inf)


def _live(ref: Any) -> bool:
    """Whether the task behind this weak reference to its future may still need expiring."""
    future = ref()
    return future is not None and future._state in _LIVE


def _collect(ref: Any, due: list[Any]) -> None:
    future = ref()
    if future is not None and future._state in _LIVE:
        due.append(future)


def _drop_finished(lane: deque[_LaneEntry]) -> None:
    """Drops the finished entries at the front of a lane (tasks mostly finish in order)."""
    while lane and not _live(lane[0][1]):
        lane.popleft()
