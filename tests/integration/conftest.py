"""Fixtures shared by the ``DaskExecutor`` tests: one real cluster for the whole session.

One in-process ``distributed.LocalCluster`` (two workers, one thread each) serves every Dask
test module, so the cluster starts once. Tasks are held on the workers by
``distributed.Event`` gates (``dask_tasks``), never by sleeps. Every executor a test makes
is shut down at its teardown, after which Dask must hold no key of ours (``client.futures``
is empty) and the books must balance. ``distributed`` is imported inside the fixtures, so
the other integration tests run where it is not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration._require import library
from threadpool_plus import PoolStats

if TYPE_CHECKING:
    import distributed

    from tests.integration.dask_tasks import DaskGate
    from threadpool_plus.dask import DaskExecutor

Factory = Callable[..., "DaskExecutor"]


def balanced(s: PoolStats) -> bool:
    return s.submitted == (
        s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued
    ) and (0 <= s.overrunning <= s.active)


@pytest.fixture(scope="session")
def client() -> Iterator[distributed.Client]:
    dist = library("distributed")
    with (
        dist.LocalCluster(
            processes=False,
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=":0",  # 8787 may be taken
        ) as cluster,
        dist.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def make_executor(client: distributed.Client) -> Iterator[Factory]:
    """Makes executors; at teardown shuts each down and checks that Dask holds nothing."""
    from threadpool_plus.dask import DaskExecutor

    executors: list[DaskExecutor] = []

    def factory(**kwargs: Any) -> DaskExecutor:
        executor = DaskExecutor(client, **kwargs)
        executors.append(executor)
        return executor

    yield factory
    for executor in executors:
        executor.shutdown(wait=True, cancel_futures=True)
        assert balanced(executor.stats()), executor.stats()
    assert not client.futures, client.futures


@pytest.fixture
def dask_gate(client: distributed.Client) -> Iterator[DaskGate]:
    from tests.integration.dask_tasks import DaskGate

    g = DaskGate(client)
    yield g
    g.open()  # before the executors shut down: no worker thread stays blocked
