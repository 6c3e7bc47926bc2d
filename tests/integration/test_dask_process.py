"""``DaskExecutor`` beyond one process: importing without the extra, and a worker process
that dies in the middle of a task (``processes=True``)."""

from __future__ import annotations

import os

import pytest

from tests._subprocess import run_script
from tests.integration._require import library
from threadpool_plus import TaskFailure


def test_importing_the_package_never_imports_dask() -> None:
    output = run_script(
        """
        import sys
        import threadpool_plus
        from threadpool_plus import ThreadPoolExecutor
        with ThreadPoolExecutor(2) as pool:
            pool.submit(print, "ran")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
        """
    )
    assert output.splitlines() == ["ran", "[]"]


def test_missing_extra_names_the_pip_command() -> None:
    output = run_script(
        """
        import sys
        sys.modules["distributed"] = None  # as if the extra were not installed
        try:
            import threadpool_plus.dask
        except ImportError as error:
            print(error)
        """
    )
    assert output.strip() == (
        "threadpool_plus.dask needs Dask's distributed scheduler: "
        "pip install threadpool-plus[dask]"
    )


@pytest.mark.slow
def test_worker_killed_mid_task_is_a_recorded_failure() -> None:
    """A worker process that dies while running a task (``os._exit``) makes Dask give up
    on it (``KilledWorker``, with ``allowed-failures=0``): one failure, counted, recorded
    and handed to ``on_task_error``; the executor carries on with a restarted worker."""
    distributed = library("distributed")
    import dask.config

    from threadpool_plus.dask import DaskExecutor

    seen: list[TaskFailure] = []
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            processes=True,
            n_workers=1,
            threads_per_worker=1,
            dashboard_address=":0",  # 8787 may be taken
        ) as cluster,
        distributed.Client(cluster) as client,
        DaskExecutor(client, on_task_error=seen.append) as pool,
    ):
        doomed = pool.submit(os._exit, 1)
        error = doomed.exception(timeout=45)
        assert isinstance(error, distributed.KilledWorker), repr(error)
        [record] = pool.recent_failures()
        assert record.task == "_exit"
        assert "KilledWorker" in record.traceback
        assert seen == [record]
        s = pool.stats()
        assert (s.failed, s.active, s.completed) == (1, 0, 0), s
        assert pool.submit(abs, -3).result(timeout=45) == 3  # a restarted worker runs it
        pool.shutdown()
        assert not client.futures
