"""Helper threads for the subprocess scripts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

from tests._support import DEADLINE

__all__ = ["held_in_another_thread", "in_thread"]


def in_thread(fn: Callable[[], object]) -> threading.Thread:
    """Runs ``fn`` in a new thread; returns the started thread."""
    thread = threading.Thread(target=fn)
    thread.start()
    return thread


@contextmanager
def held_in_another_thread(
    *holds: AbstractContextManager[object], timeout: float = DEADLINE
) -> Iterator[None]:
    """Another thread enters ``holds`` (in order, e.g. locks) and stays inside them until
    the block ends, or ``timeout`` seconds at most."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with ExitStack() as stack:
            for cm in holds:
                stack.enter_context(cm)
            held.set()
            done.wait(timeout)

    holder = in_thread(hold)
    try:
        if not held.wait(timeout):
            raise AssertionError(f"the holding thread did not get hold within {timeout}s")
        yield
    finally:
        done.set()
        holder.join()
