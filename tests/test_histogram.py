"""The pool's own latency histograms: buckets, recording and validation."""

from __future__ import annotations

import math
import threading

import pytest

from tests import _probe as probe
from tests._support import Gate
from tests.conftest import PoolFactory
from threadpool_plus import ThreadPoolExecutor
from threadpool_plus._histogram import DEFAULT_BUCKETS, Histogram, check_buckets


def test_default_buckets_span_microseconds_to_minutes() -> None:
    assert DEFAULT_BUCKETS[0] <= 0.00001
    assert DEFAULT_BUCKETS[-1] >= 300
    assert list(DEFAULT_BUCKETS) == sorted(set(DEFAULT_BUCKETS))


def test_observations_land_in_le_buckets() -> None:
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        hist.observe(value)
    snap = hist.snapshot()
    assert snap.cumulative == (2, 4, 5)
    assert snap.count == 5
    assert snap.sum == pytest.approx(8.65)


def test_quantile_interpolates_like_prometheus() -> None:
    hist = Histogram((1.0, 2.0, 4.0))
    for value in (0.5, 1.5, 1.5, 3.0):
        hist.observe(value)
    snap = hist.snapshot()
    assert snap.quantile(0.5) == pytest.approx(1.5)
    assert snap.quantile(1.0) == pytest.approx(4.0)
    assert math.isnan(Histogram((1.0,)).snapshot().quantile(0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        snap.quantile(1.5)


@pytest.mark.parametrize(
    ("buckets", "error", "match"),
    [
        ([], ValueError, "must not be empty"),
        ([0.1, 0.1], ValueError, "strictly increasing"),
        ([1.0, 0.5], ValueError, "strictly increasing"),
        ([0.0, 1.0], ValueError, "> 0"),
        ([float("inf")], ValueError, "finite"),
        ([float("nan")], ValueError, "finite"),
        ("0.1", TypeError, "sequence of numbers"),
        (0.5, TypeError, "sequence of numbers"),
        (["1"], TypeError, "must be numbers"),
        ([True], TypeError, "must be numbers"),
    ],
)
def test_bad_buckets_raise(buckets: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_buckets(buckets)
    with pytest.raises(error, match=match):
        ThreadPoolExecutor(1, histogram_buckets=buckets)  # type: ignore[arg-type]


def test_pool_records_run_time_and_queue_wait(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, histogram_buckets=[0.001, 60.0])
    slow = pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = pool.submit(int)  # waits behind the gated task
    assert not threading.Event().wait(0.01)  # queued long enough to pass 1 ms
    gate.open()
    slow.result()
    queued.result()
    failed = pool.submit(int, "x")
    assert failed.exception() is not None
    stats, wait, run = probe.metrics(pool)
    assert run.count == wait.count == stats.completed + stats.failed == 3
    assert run.bounds == wait.bounds == (0.001, 60.0)
    assert run.cumulative[1] == 3, "every task ran for less than a minute"
    assert run.cumulative[0] <= 2, "the gated task ran for more than a millisecond"
    assert wait.cumulative[0] <= 2, "the queued task waited more than a millisecond"
    assert run.sum > 0.01


def test_cancelled_tasks_are_not_observed(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)
    running = pool.submit(gate.wait)
    gate.wait_entered(1)
    cancelled = [pool.submit(int) for _ in range(3)]
    pool.shutdown(wait=False, drain=False)
    gate.open()
    running.result()
    pool.shutdown()
    assert all(f.cancelled() for f in cancelled)
    _, wait, run = probe.metrics(pool)
    assert (wait.count, run.count) == (1, 1)
