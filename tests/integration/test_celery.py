"""celery's thread pool (``celery -P threads``) over our pool.

celery's ``TaskPool`` builds a ``concurrent.futures.ThreadPoolExecutor``, submits every task
to it and reports ``len(executor._threads)`` in ``celery inspect stats``; it stops it with
``shutdown(cancel_futures=True)``. The test swaps our pool in where celery looks it up.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.integration._require import library

library("celery")

from celery.concurrency import thread as celery_thread  # noqa: E402

from threadpool_plus import ThreadPoolExecutor  # noqa: E402

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[ThreadPoolExecutor]:
    """The pools celery builds, ours by way of its module's ThreadPoolExecutor name."""
    pools: list[ThreadPoolExecutor] = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(celery_thread, "ThreadPoolExecutor", Pool)
    return pools


def test_tasks_run_and_stats_count_the_threads(
    built: list[ThreadPoolExecutor], gate: Gate
) -> None:
    task_pool: Any = celery_thread.TaskPool(limit=3)
    task_pool.start()
    [pool] = built
    results: list[object] = []
    done = threading.Event()

    def record(value: object) -> None:
        results.append(value)
        if len(results) == 2:
            done.set()

    try:
        for value in ("a", "b"):
            task_pool.apply_async(gate.wait, args=(value,), callback=record)
        wait_until(lambda: gate.entered == 2)
        info = task_pool.info
        assert info["max-concurrency"] == 3
        assert info["threads"] == 2 == pool.stats().workers
        gate.open()
        assert done.wait(DEADLINE)
        assert sorted(map(str, results)) == ["a", "b"]
    finally:
        gate.open()
        task_pool.stop()
    assert pool._shutdown
    assert pool.stats().submitted == pool.stats().completed == 2
