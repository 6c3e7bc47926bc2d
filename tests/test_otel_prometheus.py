"""End to end: OpenTelemetry's Prometheus exporter shows what ``PoolCollector`` shows.

The same pool is exported both ways, each into its own registry; the two scrapes are
compared family by family through the mapping documented in ``docs/otel.md``.
"""

# ruff: noqa: E402 -- the imports below need the libraries that library() checks first

from __future__ import annotations

import pytest

from tests.integration._require import library

library("opentelemetry.exporter.prometheus")  # the integration extra
library("prometheus_client")

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests._support import Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded
from threadpool_plus.otel import instrument
from threadpool_plus.prometheus import PoolCollector

# PoolCollector's sample -> the OpenTelemetry exporter's sample, and the labels it adds
# (threadpool_workers is the sum of threadpool_thread_count over its states).
SAMPLES: dict[str, tuple[str, dict[str, str]]] = {
    **{
        f"threadpool_tasks_{name}_total": (f"threadpool_task_{name}_total", {})
        for name in (
            "submitted",
            "completed",
            "failed",
            "cancelled",
            "expired",
            "rejected",
            "dropped",
            "caller_ran",
        )
    },
    "threadpool_idle_workers": ("threadpool_thread_count", {"threadpool_thread_state": "idle"}),
    "threadpool_busy_workers": ("threadpool_thread_count", {"threadpool_thread_state": "busy"}),
    "threadpool_active_tasks": ("threadpool_task_active", {}),
    "threadpool_overrunning_tasks": ("threadpool_task_overrunning", {}),
    "threadpool_queued_tasks": ("threadpool_queue_length", {}),
    "threadpool_waiting_submitters": ("threadpool_submitter_waiting", {}),
    "threadpool_queue_capacity": ("threadpool_queue_capacity", {}),
    "threadpool_min_workers": ("threadpool_thread_min", {}),
    "threadpool_max_workers": ("threadpool_thread_limit", {}),
    "threadpool_peak_workers": ("threadpool_thread_peak", {}),
    **{
        f"threadpool_task_{name}_seconds_{part}": (
            f"threadpool_task_{name}_duration_seconds_{part}",
            {},
        )
        for name in ("queue_wait", "run")
        for part in ("count", "sum", "bucket")
    },
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """``{(sample name, labels): value}``; bucket bounds normalised to floats."""
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            labels = dict(sample.labels)
            if "le" in labels:
                labels["le"] = repr(float(labels["le"]))
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def test_the_otel_exporter_shows_what_pool_collector_shows(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=0, name="e2e")
    prometheus = CollectorRegistry()
    PoolCollector(pool, registry=prometheus)
    otel = CollectorRegistry()
    reader = PrometheusMetricReader(
        disable_target_info=True, scope_info_enabled=False, registry=otel
    )
    provider = MeterProvider(metric_readers=[reader])
    handle = instrument(pool, meter_provider=provider, histograms=True)
    try:
        for _ in range(20):
            pool.submit(int).result()
        for _ in range(4):
            assert pool.submit(int, "x").exception() is not None
        pool.submit(gate.wait)
        gate.wait_entered(1)
        pool.submit(int)  # queued
        with pytest.raises(PoolOverloaded):
            pool.submit(int)  # rejected
        compare(scrape(prometheus), scrape(otel))  # a running task, a queued one
        gate.open()
        wait_until(lambda: pool.stats().idle_workers == 1)
        ours = scrape(prometheus)
        assert ours[("threadpool_task_run_seconds_count", frozenset({("pool", "e2e")}))] == 26
        compare(ours, scrape(otel))
    finally:
        handle.close()
        provider.shutdown()


def compare(ours: Samples, theirs: Samples) -> None:
    compared = 0
    for (name, labels), value in ours.items():
        if name == "threadpool_workers":
            continue  # below: the sum over states
        other, extra = SAMPLES[name]
        mapped = {("threadpool_name" if k == "pool" else k): v for k, v in labels}
        key = (other, frozenset({**mapped, **extra}.items()))
        assert theirs[key] == pytest.approx(value, rel=1e-9), name
        compared += 1
    assert compared == len(ours) - 1
    threads = sum(v for (name, _), v in theirs.items() if name == "threadpool_thread_count")
    assert threads == ours[("threadpool_workers", frozenset({("pool", "e2e")}))]
