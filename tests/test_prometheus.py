"""The Prometheus collector and the /metrics server (without a Prometheus server)."""

from __future__ import annotations

import gc
import threading
import urllib.request

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, TaskTimeout, ThreadPoolExecutor
from threadpool_plus.prometheus import PoolCollector, serve_metrics

FAMILIES = {
    "threadpool_tasks_submitted": "counter",
    "threadpool_tasks_completed": "counter",
    "threadpool_tasks_failed": "counter",
    "threadpool_tasks_cancelled": "counter",
    "threadpool_tasks_expired": "counter",
    "threadpool_tasks_rejected": "counter",
    "threadpool_tasks_dropped": "counter",
    "threadpool_tasks_caller_ran": "counter",
    "threadpool_workers": "gauge",
    "threadpool_idle_workers": "gauge",
    "threadpool_busy_workers": "gauge",
    "threadpool_active_tasks": "gauge",
    "threadpool_overrunning_tasks": "gauge",
    "threadpool_queued_tasks": "gauge",
    "threadpool_waiting_submitters": "gauge",
    "threadpool_queue_capacity": "gauge",
    "threadpool_min_workers": "gauge",
    "threadpool_max_workers": "gauge",
    "threadpool_peak_workers": "gauge",
    "threadpool_task_queue_wait_seconds": "histogram",
    "threadpool_task_run_seconds": "histogram",
}


def scrape(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """``{(sample name, pool label): value}`` for the non-bucket samples."""
    text = generate_latest(registry).decode()
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" not in sample.labels:
                values[(sample.name, sample.labels["pool"])] = sample.value
    return values


def test_importing_the_package_registers_nothing() -> None:
    registry = CollectorRegistry()
    with ThreadPoolExecutor(1, name="unregistered"):
        assert generate_latest(registry) == b""


def test_every_family_is_exported_with_its_type(make_pool: PoolFactory) -> None:
    registry = CollectorRegistry()
    PoolCollector(make_pool(2, name="types"), registry=registry)
    text = generate_latest(registry).decode()
    found = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert found == FAMILIES


def test_values_match_stats(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=0, min_workers=1, name="vals")
    registry = CollectorRegistry()
    PoolCollector(pool, registry=registry)
    for _ in range(3):
        pool.submit(int).result()
    assert pool.submit(int, "x").exception() is not None
    blocker = pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = pool.submit(int)
    with pytest.raises(PoolOverloaded):
        pool.submit(int)
    values = scrape(registry)
    stats = pool.stats()
    expected = {
        "threadpool_tasks_submitted_total": stats.submitted,
        "threadpool_tasks_completed_total": stats.completed,
        "threadpool_tasks_failed_total": stats.failed,
        "threadpool_tasks_cancelled_total": stats.cancelled,
        "threadpool_tasks_expired_total": stats.expired,
        "threadpool_tasks_rejected_total": stats.rejected,
        "threadpool_tasks_dropped_total": stats.dropped,
        "threadpool_tasks_caller_ran_total": stats.caller_ran,
        "threadpool_workers": stats.workers,
        "threadpool_idle_workers": stats.idle_workers,
        "threadpool_busy_workers": stats.busy_workers,
        "threadpool_active_tasks": stats.active,
        "threadpool_overrunning_tasks": stats.overrunning,
        "threadpool_queued_tasks": stats.queued,
        "threadpool_waiting_submitters": stats.waiting_submitters,
        "threadpool_queue_capacity": 1,
        "threadpool_min_workers": 1,
        "threadpool_max_workers": 1,
        "threadpool_peak_workers": 1,
        "threadpool_task_run_seconds_count": stats.completed + stats.failed,
        "threadpool_task_queue_wait_seconds_count": stats.completed + stats.failed,
    }
    assert {name: values[(name, "vals")] for name in expected} == expected
    assert (stats.submitted, stats.rejected, stats.queued, stats.active) == (6, 1, 1, 1)
    gate.open()
    blocker.result()
    queued.result()


def test_expired_and_overrunning_tasks_are_exported(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, name="deadlines")
    registry = CollectorRegistry()
    PoolCollector(pool, registry=registry)

    def exported(*names: str) -> tuple[float, ...]:
        values = scrape(registry)
        return tuple(values[(name, "deadlines")] for name in names)

    def balanced() -> bool:
        """submitted == completed + failed + cancelled + expired + active + queued."""
        submitted, *parts = exported(
            "threadpool_tasks_submitted_total",
            "threadpool_tasks_completed_total",
            "threadpool_tasks_failed_total",
            "threadpool_tasks_cancelled_total",
            "threadpool_tasks_expired_total",
            "threadpool_active_tasks",
            "threadpool_queued_tasks",
        )
        return submitted == sum(parts)

    watched = ("threadpool_tasks_expired_total", "threadpool_overrunning_tasks")
    ran: list[int] = []

    # Queued behind a blocked thread past its deadline: it expires without running.
    blocker = pool.submit(gate.wait)
    gate.wait_entered(1)
    late = pool.options(timeout=0.2).submit(ran.append, 1)
    with pytest.raises(TaskTimeout):
        late.result(timeout=DEADLINE)
    assert exported(*watched, "threadpool_queued_tasks", "threadpool_active_tasks") == (1, 0, 0, 1)
    assert balanced()
    gate.open()
    blocker.result(timeout=DEADLINE)

    # Running past its deadline: its future fails, its thread still runs it (overrunning,
    # and active), until it returns and counts as expired.
    release = threading.Event()
    try:
        overrun = pool.options(timeout=0.2).submit(release.wait, DEADLINE)
        with pytest.raises(TaskTimeout):
            overrun.result(timeout=DEADLINE)
        assert exported(*watched, "threadpool_active_tasks") == (1, 1, 1)
        assert balanced()
    finally:
        release.set()
    wait_until(lambda: exported("threadpool_active_tasks") == (0,))
    assert exported(*watched) == (2, 0)
    assert balanced()
    assert ran == []
    with pytest.raises(TaskTimeout):
        overrun.result()  # its late result is discarded

    # Neither is a completion or a failure, nor observed by the histograms.
    stats = pool.stats()
    assert (stats.completed, stats.failed, stats.expired, stats.overrunning) == (1, 0, 2, 0)
    assert exported(
        "threadpool_tasks_completed_total",
        "threadpool_tasks_failed_total",
        "threadpool_task_run_seconds_count",
        "threadpool_task_queue_wait_seconds_count",
    ) == (1, 0, 1, 1)


def test_one_collector_serves_several_pools(make_pool: PoolFactory) -> None:
    first, second = make_pool(1, name="alpha"), make_pool(1, name="beta")
    registry = CollectorRegistry()
    collector = PoolCollector(first, registry=registry)
    collector.add(second)
    second.submit(int).result()
    values = scrape(registry)
    assert values[("threadpool_tasks_completed_total", "alpha")] == 0
    assert values[("threadpool_tasks_completed_total", "beta")] == 1
    collector.remove(first)
    assert ("threadpool_workers", "alpha") not in scrape(registry)


def test_duplicate_pool_names_are_refused(make_pool: PoolFactory) -> None:
    collector = PoolCollector(make_pool(1, name="same"))
    with pytest.raises(ValueError, match="'same'"):
        collector.add(make_pool(1, name="same"))


def test_only_pools_are_accepted() -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as std, pytest.raises(TypeError):
        PoolCollector(std)  # type: ignore[arg-type]


def test_registering_twice_is_detected(make_pool: PoolFactory) -> None:
    registry = CollectorRegistry()
    PoolCollector(make_pool(1), registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PoolCollector(make_pool(1), registry=registry)


def test_collected_pools_drop_out_of_the_scrape() -> None:
    registry = CollectorRegistry()
    pool = ThreadPoolExecutor(1, name="ephemeral")
    PoolCollector(pool, registry=registry)
    assert ("threadpool_workers", "ephemeral") in scrape(registry)
    pool.shutdown()
    del pool
    gc.collect()
    assert ("threadpool_workers", "ephemeral") not in scrape(registry)


def test_serve_metrics_binds_to_loopback(make_pool: PoolFactory) -> None:
    registry = CollectorRegistry()
    PoolCollector(make_pool(1, name="served"), registry=registry)
    with serve_metrics(0, registry=registry) as server:
        assert server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as response:
            body = response.read().decode()
    assert 'threadpool_workers{pool="served"}' in body
    server.stop()  # harmless a second time


def test_serve_metrics_on_a_busy_port_raises() -> None:
    with (
        serve_metrics(0, registry=CollectorRegistry()) as server,
        pytest.raises(OSError, match="in use"),
    ):
        serve_metrics(server.port, registry=CollectorRegistry())
