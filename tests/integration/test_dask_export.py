"""A ``DaskExecutor`` is exported like a thread pool: the Prometheus collector and the
OpenTelemetry exporter take it as it is, with the same families and instruments, its own
``pool`` label (``threadpool.name`` attribute), values equal to one ``stats()`` snapshot,
and histograms that count every finished task. Run on the session's real cluster
(``tests/integration/conftest.py``) beside a thread pool exported through the same
collector and the same meter provider.
"""

# ruff: noqa: E402 -- the imports below need the libraries that library() checks first
from __future__ import annotations

from concurrent.futures import Future

import pytest

from tests.integration._require import library

library("distributed")
library("opentelemetry.sdk")
library("prometheus_client")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from tests.conftest import PoolFactory
from tests.integration.conftest import Factory
from tests.integration.dask_tasks import DaskGate, blocked, echo, fail
from tests.test_otel import HISTOGRAMS, assert_matches, collect, pool_key
from tests.test_prometheus import FAMILIES, scrape
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor
from threadpool_plus.dask import DaskExecutor
from threadpool_plus.otel import instrument
from threadpool_plus.prometheus import PoolCollector

pytestmark = pytest.mark.timeout(60)


def load(
    make_executor: Factory, dask_gate: DaskGate, make_pool: PoolFactory
) -> tuple[DaskExecutor, ThreadPoolExecutor, list[Future[int]]]:
    """An executor with 3 completed, 1 failed, 1 running, 1 queued and 1 rejected task (and
    those two unfinished futures), and beside it a thread pool that ran one task."""
    threads = make_pool(2, name="threads")
    threads.submit(abs, -1).result()
    pool = make_executor(max_in_flight=1, max_queue_size=1, submit_timeout=0, name="cluster")
    for n in range(3):
        assert pool.submit(echo, n).result(timeout=30) == n
    assert pool.submit(fail, "boom").exception(timeout=30) is not None
    running = pool.submit(blocked, dask_gate.name, 1)
    assert dask_gate.started()
    queued = pool.submit(echo, 2)
    with pytest.raises(PoolOverloaded):
        pool.try_submit(echo, 3)
    return pool, threads, [running, queued]


def test_prometheus_scrapes_a_dask_executor_beside_a_thread_pool(
    make_executor: Factory, dask_gate: DaskGate, make_pool: PoolFactory
) -> None:
    pool, threads, _ = load(make_executor, dask_gate, make_pool)
    registry = CollectorRegistry()
    PoolCollector(pool, threads, registry=registry)
    values = scrape(registry)
    stats = pool.stats()
    assert (stats.completed, stats.failed, stats.active, stats.queued, stats.rejected) == (
        3, 1, 1, 1, 1,
    )  # fmt: skip
    counters = {
        "threadpool_tasks_submitted_total": stats.submitted,
        "threadpool_tasks_completed_total": stats.completed,
        "threadpool_tasks_failed_total": stats.failed,
        "threadpool_tasks_rejected_total": stats.rejected,
        "threadpool_active_tasks": stats.active,
        "threadpool_queued_tasks": stats.queued,
        "threadpool_max_workers": stats.max_workers,
        "threadpool_task_run_seconds_count": stats.completed + stats.failed,
        "threadpool_task_queue_wait_seconds_count": stats.completed + stats.failed,
    }
    assert {name: values[(name, "cluster")] for name in counters} == counters
    exported = {name for name, label in values if label == "cluster"}
    for family, kind in FAMILIES.items():  # every family, with a sample for the executor
        suffix = {"counter": "_total", "gauge": "", "histogram": "_count"}[kind]
        assert family + suffix in exported, family
    assert values[("threadpool_tasks_completed_total", "threads")] == 1


def test_opentelemetry_exports_a_dask_executor_beside_a_thread_pool(
    make_executor: Factory, dask_gate: DaskGate, make_pool: PoolFactory
) -> None:
    pool, threads, futures = load(make_executor, dask_gate, make_pool)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        with instrument(pool, threads, meter_provider=provider, histograms=True):
            found = collect(reader)
            snapshots = {"cluster": pool.stats(), "threads": threads.stats()}
            assert_matches(found, snapshots)
            dask_gate.open()
            for future in futures:
                future.result(timeout=30)
            found = collect(reader)
            finished = pool.stats()
            assert_matches(found, {"cluster": finished, "threads": threads.stats()})
        for name in HISTOGRAMS:  # recorded from the moment it was instrumented
            assert found[name].points[pool_key("cluster")] == 2, name
    finally:
        provider.shutdown()
