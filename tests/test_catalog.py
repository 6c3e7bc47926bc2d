"""The one catalog both exporters read (complete, unique, named by the conventions), and
the exporters' optional imports."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests._subprocess import run_script
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


def test_importing_the_package_never_imports_opentelemetry() -> None:
    out = run_script(
        """
        import sys
        import threadpool_plus
        import threadpool_plus._catalog
        from threadpool_plus import ThreadPoolExecutor
        with ThreadPoolExecutor(1) as pool:
            pool.submit(int).result()
        extras = ("opentelemetry", "prometheus_client")
        print(sorted(m for m in sys.modules if m.split(".")[0] in extras))
        """
    )
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "dependency", "extra"),
    [("otel", "opentelemetry", "otel"), ("prometheus", "prometheus_client", "prometheus")],
)
def test_a_missing_extra_names_the_install_command(
    module: str, dependency: str, extra: str
) -> None:
    out = run_script(
        f"""
        import sys
        sys.modules[{dependency!r}] = None  # as if it were not installed
        try:
            import threadpool_plus.{module}
        except ImportError as error:
            print(error)
        """
    )
    assert f"pip install threadpool-plus[{extra}]" in out
