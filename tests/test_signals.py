"""``shutdown()`` and other calls from a signal handler that interrupted the main thread
inside the pool: in a critical section, or blocked in ``submit()`` waiting for room.

Each test runs its script in a new interpreter (``tests._subprocess``), which installs the
handler. ``probe.signal_when_locked`` raises the signal while the main thread holds the
pool's lock; ``tests.scripts.blocked_submit`` raises it while the main thread waits for
room in a full queue.
"""

from __future__ import annotations

import pytest

from tests._subprocess import needs_posix_signals, run_script

pytestmark = needs_posix_signals

# Defines ``section()``: a pool call that takes the pool's lock in the main thread.
CRITICAL_SECTIONS = {
    "submit": """
        def section():
            try:
                future = pool.submit(pow, 2, 5)
            except RuntimeError as exc:
                print("interrupted submit refused:", exc)
            else:
                assert future.result(timeout=5) == 32
        """,
    "stats": """
        def section():
            pool.stats()
        """,
    "resize": """
        def section():
            try:
                pool.resize(max_workers=3)
            except RuntimeError as exc:
                print("interrupted resize refused:", exc)
        """,
}


@pytest.mark.parametrize("section", sorted(CRITICAL_SECTIONS))
def test_shutdown_from_a_signal_handler_inside_a_critical_section(section: str) -> None:
    """``shutdown(wait=True)`` from a handler that interrupted the main thread while it
    held the pool's lock returns (no deadlock), and the pool ends up shut down."""
    output = run_script(
        """
        import signal
        from tests import _probe as probe
        from tests._support import threads_named
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="signalled")
        pool.submit(int).result()
        seen = []

        def handler(signum, frame):
            seen.append(probe.lock_held(pool))
            pool.shutdown(wait=True)
            seen.append("returned")

        signal.signal(signal.SIGUSR1, handler)
        """,
        CRITICAL_SECTIONS[section],
        """
        with probe.signal_when_locked(pool) as arm:
            arm()
            section()
        assert seen == [True, "returned"], seen  # the handler ran inside the section
        try:
            pool.submit(int)
        except RuntimeError as exc:
            print("later submit refused:", exc)
        pool.shutdown(wait=True)
        assert not threads_named("signalled")
        """,
    )
    assert "later submit refused: cannot schedule new futures after shutdown" in output


# The main thread blocks in submit() on a full queue; a thread sends it SIGUSR1 then.
BLOCKED_SUBMIT = """
    import signal, threading
    from tests import _probe as probe
    from tests._support import threads_named
    from tests.scripts.blocked_submit import full_pool, interrupt_when_waiting
    from tests.scripts.threads import held_in_another_thread, in_thread

    pool, gate, running, queued = full_pool()
    """


@pytest.mark.parametrize("wait", [False, True])
def test_shutdown_from_a_signal_handler_wakes_the_blocked_submit(wait: bool) -> None:
    """A handler's ``shutdown()`` wakes the main thread it interrupted while blocked in
    ``submit`` on a full queue: that submit raises RuntimeError; accepted tasks still run."""
    output = run_script(
        BLOCKED_SUBMIT,
        f"""
        handled = threading.Event()

        def handler(signum, frame):
            pool.shutdown(wait={wait})
            handled.set()

        signal.signal(signal.SIGUSR1, handler)
        interrupt_when_waiting(pool)
        try:
            pool.submit(print, "blocked task ran")
        except RuntimeError as exc:
            print("blocked submit refused:", exc)
        assert handled.is_set()
        gate.open()
        print(running.result(timeout=5), queued.result(timeout=5))
        pool.shutdown(wait=True)
        assert not threads_named("signalled")
        """,
    )
    assert output.splitlines() == [
        "blocked submit refused: cannot schedule new futures after shutdown",
        "running queued",
    ]


def test_shutdown_from_a_signal_handler_while_another_thread_holds_the_lock() -> None:
    """Even when another thread holds the pool's lock as the handler runs (a worker
    finishing a task does, often), the handler's ``shutdown()`` closes the pool: other
    threads are refused at once and the interrupted blocked submit is woken."""
    output = run_script(
        BLOCKED_SUBMIT,
        """
        returned = threading.Event()

        def handler(signum, frame):
            with held_in_another_thread(probe.holding_lock(pool), timeout=5):
                pool.shutdown(wait=False)

            def other_submit():
                try:
                    pool.try_submit(int)
                except RuntimeError as exc:
                    print("after the handler, another thread gets", type(exc).__name__)

            in_thread(other_submit).join()

        def watchdog():
            if not returned.wait(5):  # the blocked submit was not woken: let it through
                print("the blocked submit was still waiting after 5 s")
                gate.open()

        signal.signal(signal.SIGUSR1, handler)
        interrupt_when_waiting(pool)
        in_thread(watchdog)
        try:
            pool.submit(int)
        except RuntimeError as exc:
            print("blocked submit refused:", exc)
        returned.set()
        gate.open()
        pool.shutdown(wait=True)
        """,
    )
    assert output.splitlines() == [
        "after the handler, another thread gets RuntimeError",
        "blocked submit refused: cannot schedule new futures after shutdown",
    ]


def test_shutdown_from_a_signal_handler_after_another_handler_used_the_pool() -> None:
    """A handler that used the pool (``stats()``) while the main thread was blocked in
    ``submit`` does not make a later handler's ``shutdown()`` deadlock when that one lands
    while the main thread holds the lock."""
    output = run_script(
        BLOCKED_SUBMIT,
        """
        import os

        calls = []

        def handler(signum, frame):
            calls.append(signum)
            if len(calls) == 1:  # a "dump the stats" handler
                print("queued:", pool.stats().queued)
                arm()  # the next signal lands when the main thread next holds the lock
                gate.open()  # (an admitted waiter does not retake it: the final shutdown)
            else:  # a "shut down" handler
                pool.shutdown(wait=False)
                print("shutdown returned")

        returned = threading.Event()

        def watchdog():
            if not returned.wait(5):
                print("deadlocked", flush=True)
                os._exit(3)

        with probe.signal_when_locked(pool) as arm:
            signal.signal(signal.SIGUSR1, handler)
            in_thread(watchdog)
            interrupt_when_waiting(pool)
            try:
                pool.submit(int)
            except RuntimeError:
                pass  # refused or accepted: both are fine once the pool was shut down
            returned.set()
            pool.shutdown(wait=True)
        """,
    )
    assert output.splitlines() == ["queued: 1", "shutdown returned"]


@pytest.mark.parametrize(
    "call", ["pool.stats()", "pool.submit(int)", "pool.resize(max_workers=3)", "repr(pool)"]
)
def test_other_calls_from_a_signal_handler_inside_a_critical_section_raise(call: str) -> None:
    """Only ``shutdown()`` is safe from a handler that interrupted the pool while it held
    its lock; anything else raises RuntimeError there instead of deadlocking."""
    output = run_script(
        f"""
        import signal
        from tests import _probe as probe
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="signalled")
        pool.submit(int).result()

        def handler(signum, frame):
            try:
                {call}
            except RuntimeError as exc:
                print("handler refused:", exc)

        signal.signal(signal.SIGUSR1, handler)
        with probe.signal_when_locked(pool) as arm:
            arm()
            assert pool.submit(pow, 2, 5).result(timeout=5) == 32  # interrupted, finishes
        print("after:", pool.stats().completed)
        pool.shutdown(wait=True)
        """,
    )
    assert "handler refused:" in output
    assert "was called from a signal handler that interrupted the pool" in output
    assert "after: 2" in output


def test_a_signal_storm_during_submit_stats_and_resize_ends_cleanly() -> None:
    """SIGALRM every 2 ms: handlers land everywhere in the pool's code, thread starts and
    retirements included; the script checks every snapshot and result and must exit."""
    output = run_script("from tests.scripts.storm import main\nmain()\n")
    assert output.startswith("storm: "), output


def test_shutdown_from_a_signal_handler_on_top_of_a_thread_start() -> None:
    """The handler's ``shutdown(wait=True)`` cannot wait for the thread whose start it
    interrupted (it starts only once the handler returns): it returns, the start then
    goes ahead, the accepted task runs and a later ``shutdown`` joins the thread."""
    output = run_script(
        """
        import signal
        from tests import _probe as probe
        from tests._support import threads_named
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="signalled")
        returned = []

        def handler(signum, frame):
            pool.shutdown(wait=True)
            returned.append(True)

        signal.signal(signal.SIGUSR1, handler)
        with probe.signal_in_thread_start():
            future = pool.submit(pow, 2, 5)
        print("handler returned:", returned == [True])
        print("task:", future.result(timeout=5))
        pool.shutdown(wait=True)
        print("threads left:", [t.name for t in threads_named("signalled") if t.is_alive()])
        """
    )
    assert output.splitlines() == ["handler returned: True", "task: 32", "threads left: []"]
