"""What ``shutdown()`` hands back: the tasks it dropped and the ones still running."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._items import WorkItem
from ._task import Task

__all__ = ["DroppedTask", "ShutdownReport", "dropped"]


class DroppedTask(NamedTuple):
    """A task ``shutdown()`` cancelled before it started, as it was submitted: enough to
    persist it or submit it again. ``future`` is the caller's own, now cancelled."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any]


@dataclass(frozen=True)
class ShutdownReport:
    """What one ``shutdown()`` call did.

    Attributes:
        timed_out: ``timeout`` ran out before the threads were done (never with
            ``wait=False``).
        dropped: The tasks this call cancelled, in queue order: those it found queued with
            ``drain=False``, and those still queued when ``timeout`` ran out.
        running: The names of the tasks still running when it returned after its timeout;
            their handles are cancelled (``current_task().cancelled``), and they count as
            usual when they return.
    """

    timed_out: bool = False
    dropped: tuple[DroppedTask, ...] = ()
    running: tuple[str, ...] = ()


def dropped(items: Iterable[WorkItem]) -> tuple[DroppedTask, ...]:
    """The ``DroppedTask`` of each item, with the callable its submitter gave."""
    return tuple(
        DroppedTask(fn.fn if isinstance(fn, Task) else fn, args, kwargs, future)
        for future, fn, args, kwargs, _ in items
    )
