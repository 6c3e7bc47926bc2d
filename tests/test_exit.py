"""Interpreter exit: what happens to a pool's tasks and threads when the main thread ends.

Each test runs its script in a new interpreter (``tests._subprocess``).
"""

from __future__ import annotations

from tests._subprocess import run_script


def test_tasks_queued_at_exit_all_run() -> None:
    """Tasks still queued when the main thread ends all run before the process exits."""
    output = run_script(
        """
        import atexit, threading
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, name="exiting")
        release = threading.Event()
        pool.submit(release.wait, 10)
        for i in range(20):
            pool.submit(print, "task", i, flush=True)
        # Registered after the import, so it runs before the pool's exit hook (atexit is
        # LIFO): all 20 tasks are still queued when interpreter exit begins.
        atexit.register(release.set)
        """
    )
    assert output.splitlines() == [f"task {i}" for i in range(20)]


def test_idle_pool_does_not_delay_exit() -> None:
    """Permanent idle threads (``min_workers``, no idle timeout) let the process exit."""
    output = run_script(
        """
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(4, min_workers=2, idle_timeout=None, name="idle")
        print(pool.submit(pow, 2, 10).result())
        """
    )
    assert output.split() == ["1024"]


def test_submit_during_interpreter_exit_is_refused() -> None:
    """A ``submit`` after the pool's exit hook raises the stdlib's RuntimeError."""
    output = run_script(
        """
        import atexit

        def late_submit():
            try:
                pool.submit(print, "late task ran")
            except RuntimeError as exc:
                print("refused:", exc)

        # Registered before the import, so it runs after the pool's exit hook.
        atexit.register(late_submit)

        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="exiting")
        pool.submit(int).result()
        """
    )
    [line] = output.splitlines()
    assert line.startswith("refused: cannot schedule new futures"), line


def test_submit_from_a_task_during_exit_drain_runs_or_is_refused() -> None:
    """Tasks drained at exit may submit: each nested task runs or is refused, no hang."""
    output = run_script(
        """
        from tests._support import wait_until
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, name="exiting")

        def refused():
            try:
                pool.submit(int)
            except RuntimeError:
                return True
            return False

        def outer(i):
            try:
                pool.submit(print, i, "nested ran", flush=True)
            except RuntimeError as exc:
                print(i, "refused:", exc, flush=True)

        # The only thread waits until the exit hook has closed the pool, so the outer
        # tasks behind it all run during the exit drain.
        pool.submit(wait_until, refused)
        for i in range(20):
            pool.submit(outer, i)
        """
    )
    lines = output.splitlines()
    for i in range(20):
        outcomes = [line for line in lines if line.split()[0] == str(i)]
        assert outcomes in (
            [f"{i} refused: cannot schedule new futures after interpreter shutdown"],
            [f"{i} nested ran"],
        ), output
