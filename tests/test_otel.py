"""OpenTelemetry export (``threadpool_plus.otel``), read back with the SDK's in-memory reader."""

# ruff: noqa: E402 -- the imports below need the libraries that library() checks first

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.integration._require import library

library("opentelemetry.sdk")  # skips without the integration extra, unless it is required

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
    Sum,
)

from tests._probe import small_otel_taps, tapped_timings
from tests._support import Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, PoolStats, TaskTimeout, ThreadPoolExecutor
from threadpool_plus.otel import Instrumentation, instrument

# The contract, written out rather than read from the catalog: name -> (kind, unit, value).
# Kinds: "counter" (monotonic sum), "updowncounter" (non-monotonic sum), "gauge".
INSTRUMENTS: dict[str, tuple[str, str, Callable[[PoolStats], int]]] = {
    "threadpool.task.submitted": ("counter", "{task}", lambda s: s.submitted),
    "threadpool.task.completed": ("counter", "{task}", lambda s: s.completed),
    "threadpool.task.failed": ("counter", "{task}", lambda s: s.failed),
    "threadpool.task.cancelled": ("counter", "{task}", lambda s: s.cancelled),
    "threadpool.task.expired": ("counter", "{task}", lambda s: s.expired),
    "threadpool.task.rejected": ("counter", "{task}", lambda s: s.rejected),
    "threadpool.task.dropped": ("counter", "{task}", lambda s: s.dropped),
    "threadpool.task.caller_ran": ("counter", "{task}", lambda s: s.caller_ran),
    "threadpool.task.active": ("updowncounter", "{task}", lambda s: s.active),
    "threadpool.task.overrunning": ("updowncounter", "{task}", lambda s: s.overrunning),
    "threadpool.queue.length": ("updowncounter", "{task}", lambda s: s.queued),
    "threadpool.queue.capacity": ("updowncounter", "{task}", lambda s: s.queue_capacity),
    "threadpool.submitter.waiting": (
        "updowncounter",
        "{submitter}",
        lambda s: s.waiting_submitters,
    ),
    "threadpool.thread.min": ("updowncounter", "{thread}", lambda s: s.min_workers),
    "threadpool.thread.limit": ("updowncounter", "{thread}", lambda s: s.max_workers),
    "threadpool.thread.peak": ("gauge", "{thread}", lambda s: s.peak_workers),
}
THREAD_COUNT = "threadpool.thread.count"  # by threadpool.thread.state: idle, busy
HISTOGRAMS = ("threadpool.task.queue_wait.duration", "threadpool.task.run.duration")

Attributes = frozenset[tuple[str, object]]


@dataclass
class Collected:
    """One instrument as the SDK exported it."""

    kind: str
    unit: str
    points: dict[Attributes, float]  # value, or a histogram's count
    sums: dict[Attributes, float]  # a histogram's sum


def collect(reader: InMemoryMetricReader) -> dict[str, Collected]:
    """Every instrument of one collection, by name."""
    data = reader.get_metrics_data()
    found: dict[str, Collected] = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points: dict[Attributes, float] = {}
                sums: dict[Attributes, float] = {}
                if isinstance(metric.data, Histogram):
                    kind = "histogram"
                elif isinstance(metric.data, Sum):
                    kind = "counter" if metric.data.is_monotonic else "updowncounter"
                else:
                    assert isinstance(metric.data, Gauge)
                    kind = "gauge"
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    if isinstance(point, HistogramDataPoint):
                        points[key], sums[key] = point.count, point.sum
                    else:
                        assert isinstance(point, NumberDataPoint)
                        points[key] = point.value
                found[metric.name] = Collected(kind, metric.unit or "", points, sums)
    return found


def observed(found: dict[str, Collected]) -> set[str]:
    """The observable instruments with data points (the SDK leaves out those without;
    histograms are synchronous: with cumulative temporality they keep what was recorded)."""
    return {name for name, got in found.items() if got.points and name not in HISTOGRAMS}


def pool_key(name: str, **extra: str) -> Attributes:
    return frozenset(
        {"threadpool.name": name, **{k.replace("_", "."): v for k, v in extra.items()}}.items()
    )


def assert_matches(found: dict[str, Collected], snapshots: dict[str, PoolStats]) -> None:
    """Every instrument has the contract's kind and unit, and each pool's data point
    equals that pool's snapshot."""
    for name, (kind, unit, read) in INSTRUMENTS.items():
        assert (found[name].kind, found[name].unit) == (kind, unit), name
        expected = {pool_key(pool): read(stats) for pool, stats in snapshots.items()}
        assert found[name].points == expected, name
    threads = found[THREAD_COUNT]
    assert (threads.kind, threads.unit) == ("updowncounter", "{thread}")
    expected_threads: dict[Attributes, float] = {}
    for pool, stats in snapshots.items():
        expected_threads[pool_key(pool, threadpool_thread_state="idle")] = stats.idle_workers
        expected_threads[pool_key(pool, threadpool_thread_state="busy")] = stats.busy_workers
    assert threads.points == expected_threads


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def handles() -> Iterator[list[Instrumentation]]:
    """Handles to close at teardown (their recorder threads must not outlive the test)."""
    made: list[Instrumentation] = []
    yield made
    for handle in made:
        handle.close()
    assert not [t for t in threading.enumerate() if t.name == "threadpool_plus-otel"]


def test_every_instrument_equals_one_stats_snapshot(
    make_pool: PoolFactory,
    gate: Gate,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    drops = make_pool(1, max_queue_size=1, submit_timeout=0, overflow="drop_oldest")
    runs = make_pool(1, max_queue_size=1, submit_timeout=0, overflow="caller_runs")
    handles.append(instrument(drops, runs, meter_provider=provider))
    for _ in range(5):  # completed
        drops.submit(int).result()
    for _ in range(3):  # failed
        assert drops.submit(int, "x").exception() is not None
    drops.submit(gate.wait)
    runs.submit(gate.wait)
    gate.wait_entered(2)
    expiring = drops.options(timeout=0.05).submit(int)  # queued past its deadline
    with pytest.raises(TaskTimeout):
        expiring.result()
    wait_until(lambda: drops.stats().expired == 1)
    oldest = drops.submit(int)
    drops.submit(int)  # the queue is full: the oldest is dropped
    assert oldest.cancelled()
    with pytest.raises(PoolOverloaded):
        drops.try_submit(int)  # rejected
    runs.submit(int)  # queued
    assert runs.submit(abs, -1).result() == 1  # the queue is full: run by the caller
    # Both pools are still now (their workers wait on the gate): one snapshot each holds.
    snapshots = {pool.name: pool.stats() for pool in (drops, runs)}
    assert snapshots[drops.name].dropped == 1
    assert snapshots[drops.name].rejected == 1
    assert snapshots[runs.name].caller_ran == 1
    found = collect(reader)
    assert_matches(found, snapshots)
    assert not set(HISTOGRAMS) & set(found)  # not asked for
    gate.open()
    wait_until(lambda: drops.stats().idle_workers == 1 and runs.stats().idle_workers == 1)
    assert_matches(collect(reader), {pool.name: pool.stats() for pool in (drops, runs)})


@pytest.mark.timeout(60)
def test_one_reading_per_collection_keeps_the_invariant(
    make_pool: PoolFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    pool = make_pool(2, max_queue_size=8)
    handles.append(instrument(pool, meter_provider=provider))
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            pool.submit(int).result()

    producers = [threading.Thread(target=produce) for _ in range(2)]
    for producer in producers:
        producer.start()
    try:
        wait_until(lambda: pool.stats().completed > 100)
        key = pool_key(pool.name)
        for _ in range(50):
            found = collect(reader)
            value = {name: found[name].points[key] for name in INSTRUMENTS}
            settled = sum(
                value[f"threadpool.task.{n}"] for n in ("completed", "failed", "cancelled")
            )
            unsettled = value["threadpool.task.active"] + value["threadpool.queue.length"]
            expired = value["threadpool.task.expired"]
            assert value["threadpool.task.submitted"] == settled + expired + unsettled
    finally:
        stop.set()
        for producer in producers:
            producer.join()


def test_histograms_count_every_completed_and_failed_task(
    make_pool: PoolFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    pool = make_pool(2)
    pool.submit(int).result()  # before instrumenting: not the histograms' business
    handles.append(instrument(pool, meter_provider=provider, histograms=True))
    for future in [pool.submit(int) for _ in range(300)]:
        future.result()
    for future in [pool.submit(int, "x") for _ in range(20)]:
        assert future.exception() is not None
    found = collect(reader)
    for name in HISTOGRAMS:
        assert (found[name].kind, found[name].unit) == ("histogram", "s")
        assert found[name].points == {pool_key(pool.name): 320}
        assert found[name].sums[pool_key(pool.name)] > 0
    pool.submit(int).result()
    found = collect(reader)  # cumulative: the SDK's default temporality
    assert found[HISTOGRAMS[1]].points == {pool_key(pool.name): 321}


def test_a_full_tap_is_recorded_between_collections(
    make_pool: PoolFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    pool = make_pool(1)
    with small_otel_taps(300):
        handles.append(instrument(pool, meter_provider=provider, histograms=True))
    for future in [pool.submit(int) for _ in range(1000)]:
        future.result()
    # Three folds of 256 went to the tap; past 300 values the recorder takes them.
    wait_until(lambda: tapped_timings(pool) <= 300)
    assert collect(reader)[HISTOGRAMS[0]].points == {pool_key(pool.name): 1000}


def test_collecting_after_shutdown_and_after_the_pool_is_gone(
    provider: MeterProvider, reader: InMemoryMetricReader, handles: list[Instrumentation]
) -> None:
    pool = ThreadPoolExecutor(1, name="otel-dropped")
    handles.append(instrument(pool, meter_provider=provider, histograms=True))
    pool.submit(int).result()
    pool.shutdown()
    found = collect(reader)
    assert_matches(found, {pool.name: pool.stats()})
    assert found[HISTOGRAMS[1]].points == {pool_key(pool.name): 1}
    del pool
    gc.collect()
    assert not observed(collect(reader))


def test_remove_and_close_stop_the_export(
    make_pool: PoolFactory, provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    kept, removed = make_pool(1), make_pool(1)
    handle = instrument(kept, removed, meter_provider=provider, histograms=True)
    removed.submit(int).result()
    handle.remove(removed)
    handle.remove(removed)  # harmless
    found = collect(reader)
    assert set(found["threadpool.task.completed"].points) == {pool_key(kept.name)}
    # Its timings up to its removal were recorded.
    assert found[HISTOGRAMS[1]].points[pool_key(removed.name)] == 1
    handle.close()
    handle.close()
    assert not observed(collect(reader))
    assert not [t for t in threading.enumerate() if t.name == "threadpool_plus-otel"]
    with pytest.raises(ValueError, match="closed"):
        handle.add(kept)


def test_handles_on_one_provider_share_its_instruments(
    make_pool: PoolFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    counted, timed = make_pool(1), make_pool(1)
    handles.append(instrument(counted, meter_provider=provider))
    handles.append(instrument(timed, meter_provider=provider, histograms=True))
    for pool in (counted, timed):
        pool.submit(int).result()
    found = collect(reader)
    assert_matches(found, {pool.name: pool.stats() for pool in (counted, timed)})
    assert found[HISTOGRAMS[1]].points == {pool_key(timed.name): 1}
    handles[0].remove(timed)  # not its pool: nothing happens
    handles[0].close()
    assert_matches(collect(reader), {timed.name: timed.stats()})


def test_any_pool_on_the_core_is_exportable(
    make_pool: PoolFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    handles: list[Instrumentation],
) -> None:
    class Wrapped:  # what a DaskExecutor offers: a name and a PoolCore
        def __init__(self, pool: ThreadPoolExecutor) -> None:
            self._core = pool._core

        @property
        def name(self) -> str:
            return "wrapped"

    inner = make_pool(1)
    wrapped = Wrapped(inner)
    handles.append(instrument(wrapped, meter_provider=provider))
    inner.submit(int).result()
    assert collect(reader)["threadpool.task.completed"].points == {pool_key("wrapped"): 1}


def test_bad_input_fails_at_the_call(make_pool: PoolFactory, provider: MeterProvider) -> None:
    pool = make_pool(1, name="twice")
    with pytest.raises(TypeError, match="expected a threadpool_plus pool, not object"):
        instrument(object(), meter_provider=provider)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'twice' is already instrumented"):
        instrument(pool, make_pool(1, name="twice"), meter_provider=provider)
    for histograms in ("yes", 1, None):
        with pytest.raises(TypeError, match="histograms must be a bool"):
            instrument(pool, meter_provider=provider, histograms=histograms)  # type: ignore[arg-type]
    with instrument(pool, meter_provider=provider) as handle:
        with pytest.raises(ValueError, match="'twice' is already instrumented"):
            handle.add(make_pool(1, name="twice"))
        other = make_pool(1, name="other")
        with pytest.raises(ValueError, match="'twice' is already instrumented"):
            instrument(other, make_pool(1, name="twice"), meter_provider=provider)
        handle.add(other)  # the failed call exported nothing
        with pytest.raises(TypeError, match="not str"):
            handle.add("pool")  # type: ignore[arg-type]
