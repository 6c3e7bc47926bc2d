"""The one catalog both exporters read: complete, unique, and named by the conventions."""

from __future__ import annotations

import dataclasses
import re

from threadpool_plus import PoolStats
from threadpool_plus._catalog import COUNTERS, GAUGES, HISTOGRAMS

# PoolStats with a distinct value in every field, so a reader is known by what it returns.
DISTINCT = PoolStats(**{f.name: 100 + i for i, f in enumerate(dataclasses.fields(PoolStats))})


def test_every_stats_field_is_exported() -> None:
    read = {metric.value(DISTINCT) for metric in COUNTERS + GAUGES}
    fields = {getattr(DISTINCT, f.name) for f in dataclasses.fields(PoolStats)}
    assert fields | {DISTINCT.busy_workers} == read


def test_names_are_unique_and_conventional() -> None:
    metrics = COUNTERS + GAUGES + HISTOGRAMS
    assert len({m.family for m in metrics}) == len(metrics)
    points = {(m.instrument, m.attributes) for m in metrics if m.instrument is not None}
    assert len(points) == len([m for m in metrics if m.instrument is not None])
    for metric in metrics:
        assert re.fullmatch(r"threadpool_[a-z_]+", metric.family), metric.family
        if metric.instrument is not None:
            assert re.fullmatch(r"threadpool(\.[a-z_]+)+", metric.instrument), metric.instrument
        assert metric.family.endswith("_seconds") == (metric.unit == "s"), metric.family
        assert metric.kind == metric.instrument_kind == "histogram" or (
            metric.kind != "histogram" and metric.read is not None
        )
    assert {m.instrument_kind for m in COUNTERS} == {"counter"}
