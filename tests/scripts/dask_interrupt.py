"""Ctrl-C while dask's threaded scheduler runs a graph on the pool, as dask's own
``test_interrupt`` does it (``dask/tests/test_threaded.py``): a helper thread sends SIGINT to
the main thread, which is inside ``dask.compute``.

``run(moment)`` picks when the signal lands: ``"submit"`` while the main thread is inside the
pool's ``submit`` starting a worker thread (the moment whose ``KeyboardInterrupt`` was once
swallowed, so that dask's test hung), or ``"wait"`` once every task runs and the main thread
waits for results in dask's queue (one task then finishes: see ``interrupt``). It prints one
line per check, which the test compares. Run it in a fresh interpreter
(``tests._subprocess.run_script``): it interrupts the main thread.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import CodeType

from dask.base import compute
from dask.delayed import delayed

from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.scripts.threads import in_thread
from threadpool_plus import ThreadPoolExecutor

__all__ = ["TASKS", "run"]

TASKS = 64  # tasks in the graph, and the pool's max_workers: each submit starts a thread
LATENCY = 5.0  # seconds the KeyboardInterrupt may take to reach the caller; a hang never does

POOL_NAME = "dask-interrupted"
THREAD_START: CodeType = threading.Thread.start.__code__
QUEUE_GET: CodeType = queue.Queue.get.__code__


def main_thread_runs(code: CodeType) -> bool:
    """Whether ``code`` is on the main thread's stack right now."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def run(moment: str) -> None:
    """Interrupts a compute at ``moment`` (``"submit"`` or ``"wait"``); prints the checks."""
    assert moment in ("submit", "wait"), moment
    pool = ThreadPoolExecutor(TASKS, name=POOL_NAME)
    gate, waker = Gate(), Gate()
    graph = [delayed(gate.wait, pure=False)(i) for i in range(TASKS - 1)]
    graph.append(delayed(waker.wait, pure=False)("waker"))
    main = threading.main_thread().ident
    assert main is not None
    watching = threading.Event()
    sent_at: list[float] = []

    def interrupt() -> None:
        watching.set()
        deadline = time.monotonic() + DEADLINE
        if moment == "submit":
            # A few tasks are accepted first, so that the interrupted compute leaves some.
            # No sleep between looks: the main thread spends only tens of microseconds in
            # each Thread.start(), waiting there for the new thread with the GIL released.
            while not (gate.entered >= TASKS // 4 and main_thread_runs(THREAD_START)):
                assert time.monotonic() < deadline, "never saw the main thread start a thread"
        else:
            gate.wait_entered(TASKS - 1)
            waker.wait_entered(1)
            wait_until(lambda: main_thread_runs(QUEUE_GET))
        sent_at.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)
        # CPython loses a signal that lands just as the main thread blocks on a lock (the
        # standard pool alike, about 1 run in 100 here); the main thread then raises when
        # that lock next wakes. A finishing task wakes it, as it would in a real compute.
        waker.open()

    interrupter = in_thread(interrupt)
    watching.wait(DEADLINE)
    try:
        compute(*graph, scheduler="threads", pool=pool)  # type: ignore[no-untyped-call]
    except KeyboardInterrupt as caught:
        latency = time.monotonic() - sent_at[0]
        frames = traceback.extract_tb(caught.__traceback__)
    else:
        raise AssertionError("dask.compute returned: the KeyboardInterrupt was swallowed")
    interrupter.join()
    print("KeyboardInterrupt reached the caller promptly:", latency < LATENCY)
    print("raised in:", where(frames))

    gate.open()  # the tasks accepted before the interrupt finish
    shutdown = in_thread(pool.shutdown)
    shutdown.join(DEADLINE)
    print("shutdown(wait=True) returned:", not shutdown.is_alive())
    wait_until(lambda: not threads_named(POOL_NAME))
    stats = pool.stats()
    print(
        "every accepted task ran:",
        stats.submitted == stats.completed
        and (stats.active, stats.queued, stats.failed, stats.cancelled) == (0, 0, 0, 0),
    )
    print("tasks accepted:", "some" if 0 < stats.submitted < TASKS else stats.submitted)
    try:
        pool.submit(int)
    except RuntimeError as refused:
        print("then refused:", refused)


def where(frames: traceback.StackSummary) -> str:
    """Where, in the main thread, the KeyboardInterrupt was raised."""
    names = {(frame.name, Path(frame.filename).name) for frame in frames}
    # The signal is sent while the main thread is inside Thread.start(); it is handled at
    # the next check of the interpreter, which without the GIL may come a little later, in
    # the next submit (reserving its thread). Either way inside the pool's submit.
    if any(frame.name == "submit" and "threadpool_plus" in frame.filename for frame in frames):
        return "the pool's submit, starting a thread"
    if ("get", "queue.py") in names:
        return "dask's wait for results"
    return "elsewhere: " + " > ".join(frame.name for frame in frames)
