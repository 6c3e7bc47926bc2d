"""Latency histograms recorded by the pool itself, exported by the Prometheus collector.

The pool records without ``prometheus_client``: a histogram is a list of bucket counts,
a sum and the bucket bounds. A finished task only appends its two durations to lists,
inside the critical section it already takes (``Ledger._record_failure``); the lists are
folded into the buckets in batches (sorted once, then one ``bisect`` per bucket) when
they grow long or a scrape reads them. Measured on the no-op path this costs a third
of what bucketing each observation did.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_BUCKETS", "Histogram", "HistogramSnapshot", "check_buckets"]

# Seconds, from 10 microseconds (a trivial task) to 5 minutes (a batch job).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)


def check_buckets(buckets: object) -> tuple[float, ...]:
    """Validates bucket upper bounds: finite, positive, strictly increasing numbers."""
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Sequence):
        raise TypeError(
            f"histogram_buckets must be a sequence of numbers, not {type(buckets).__name__}"
        )
    bounds: list[float] = []
    for bound in buckets:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise TypeError(f"histogram bucket bounds must be numbers, not {bound!r}")
        if not math.isfinite(bound) or bound <= 0:
            raise ValueError(f"histogram bucket bounds must be finite and > 0, got {bound!r}")
        if bounds and bound <= bounds[-1]:
            raise ValueError("histogram bucket bounds must be strictly increasing")
        bounds.append(float(bound))
    if not bounds:
        raise ValueError("histogram_buckets must not be empty")
    return tuple(bounds)


@dataclass(frozen=True)
class HistogramSnapshot:
    """A histogram at one instant, in Prometheus' shape.

    Attributes:
        bounds: The buckets' upper bounds in seconds (``+Inf`` is implied).
        cumulative: Observations ``<=`` each bound, then the total (the ``+Inf`` bucket).
        sum: The sum of all observations, in seconds.
    """

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        """How many observations there were."""
        return self.cumulative[-1]

    def quantile(self, q: float) -> float:
        """Estimates quantile ``q`` as Prometheus' ``histogram_quantile`` does."""
        if not 0 <= q <= 1:
            raise ValueError("q must be between 0 and 1")
        total = self.count
        if total == 0:
            return math.nan
        rank = q * total
        index = bisect_left(self.cumulative, rank)
        if index >= len(self.bounds):  # in the +Inf bucket: the highest finite bound
            return self.bounds[-1]
        lower = 0.0 if index == 0 else self.bounds[index - 1]
        below = 0 if index == 0 else self.cumulative[index - 1]
        in_bucket = self.cumulative[index] - below
        if in_bucket == 0:
            return lower
        return lower + (self.bounds[index] - lower) * (rank - below) / in_bucket


class Histogram:
    """Bucket counts, guarded by the lock of whoever owns the histogram."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Observes one value (the pool itself folds batches)."""
        self.fold([seconds])

    def fold(self, values: list[float]) -> None:
        """Observes every value in ``values`` (sorting it in place)."""
        if not values:
            return
        values.sort()
        counts = self.counts
        below = 0
        for index, bound in enumerate(self.bounds):
            upto = bisect_right(values, bound)  # values <= bound: Prometheus' "le"
            counts[index] += upto - below
            below = upto
        counts[-1] += len(values) - below
        self.sum += sum(values)

    def snapshot(self) -> HistogramSnapshot:
        running = 0
        cumulative = []
        for count in self.counts:
            running += count
            cumulative.append(running)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self.sum)
