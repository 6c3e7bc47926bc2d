"""OpenTelemetry export: observable instruments that read pools at collection time.

Needs the ``otel`` extra (``pip install threadpool-plus[otel]``), which is only
``opentelemetry-api``: the application brings the SDK and its exporters. Nothing happens at
import; instrument the pools you want::

    from threadpool_plus.otel import instrument

    handle = instrument(pool)            # the global MeterProvider, or meter_provider=...
    ...
    handle.close()                       # stop exporting

The instruments are those of the catalog (``_catalog.py``; the mapping to the Prometheus
families is in ``docs/otel.md``), each data point with the pool's name as the
``threadpool.name`` attribute.

How a collection stays consistent: every instrument's callback reads the same cached
reading, one ``metrics()`` critical section per pool, taken by the first callback of a
collection. The API tells a callback nothing about which collection it serves, so the rule
is: *a callback that has already been served from the cached reading takes a new one*. A
collection calls each callback once, so its first callback (whatever the order) refreshes and
the others share that reading; the SDK runs one collection's callbacks under one lock, so two
collections do not interleave. (Refreshing in the first-registered instrument's callback
only would go stale if a reader skipped that instrument.)

Histograms (``histograms=True``) are synchronous instruments: the SDK has no asynchronous
histogram, and recording costs several microseconds per value, more than a whole task here.
So the pool's workers never call the SDK: the pool copies its timings, in batches, to a tap
(``_ledger.TimingTap``) when it folds them into its own histograms, and this module records
them, outside the pool's lock, at each collection and in a thread of its own whenever a tap
holds more than ``TAP_LIMIT`` values. A pool instrumented without histograms pays nothing;
the figures are in ``docs/otel.md`` and ``benchmarks/otel_cost.py``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from . import __version__
from ._catalog import (
    COUNTERS,
    GAUGES,
    HISTOGRAMS,
    POOL_ATTRIBUTE,
    ExportablePool,
    Metric,
    check_exportable,
    missing_extra,
    reading,
)
from ._histogram import DEFAULT_BUCKETS
from ._ledger import TimingTap
from ._pool import PoolCore
from ._stats import PoolStats

try:
    from opentelemetry.metrics import (
        CallbackOptions,
        Histogram,
        Meter,
        MeterProvider,
        Observation,
        get_meter,
        get_meter_provider,
    )
except ImportError as error:
    raise missing_extra("otel", "otel", error) from error

__all__ = ["TAP_LIMIT", "Instrumentation", "instrument"]

# Timings a pool may hold for a histogram before the recorder thread takes them: about
# 0.5 MB per pool, whatever the time between two collections.
TAP_LIMIT = 8192


@dataclass
class _Entry:
    """One instrumented pool."""

    pool: weakref.ref[ExportablePool]
    attributes: dict[str, str]
    tap: TimingTap | None  # None: no histograms
    # Strong, so that a tap is detached (and its last timings recorded) even once the pool
    # is gone while its core still runs its queue; dropped with the entry.
    core: PoolCore
    owner: Instrumentation  # the handle that added it: only it removes the pool


class Instrumentation:
    """The handle ``instrument()`` returns: ``add`` and ``remove`` pools, ``close`` it.

    Handles on one meter provider share its instruments (the API cannot register an
    instrument twice, nor unregister one), so pool names are unique per provider; a handle
    removes only the pools it added.
    """

    def __init__(self, export: _Export, histograms: bool) -> None:
        self._export = export
        self._histograms = histograms
        self.closed = False  # guarded by the export's lock

    def add(self, pool: ExportablePool) -> None:
        """Starts exporting ``pool`` (its histograms too, if this handle records them).

        Raises:
            TypeError: ``pool`` is not a threadpool_plus pool.
            ValueError: A pool of that name is already exported through this meter
                provider, or the handle is closed.
        """
        self._export.add(pool, self, self._histograms)

    def remove(self, pool: ExportablePool) -> None:
        """Stops exporting ``pool`` and records its last timings; harmless if not exported."""
        self._export.release(self, pool)

    def close(self) -> None:
        """Stops exporting this handle's pools; calling it again is harmless."""
        self._export.release(self, None)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Export:
    """A meter provider's instruments and every pool exported through them."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._lock = threading.Lock()
        self._recording = threading.Lock()  # see _record; taken after _lock, never before
        self._entries: dict[str, _Entry] = {}  # by pool name; guarded by _lock
        # The current reading: (stats, attributes) per live pool; guarded by _lock.
        self._cached: list[tuple[PoolStats, dict[str, str]]] = []
        groups: dict[str, list[Metric]] = {}
        for metric in COUNTERS + GAUGES:
            if metric.instrument is not None:
                groups.setdefault(metric.instrument, []).append(metric)
        # The callbacks served from _cached (by index): all of them, so the first refreshes.
        self._served: set[int] = set(range(len(groups)))  # guarded by _lock
        for index, (name, metrics) in enumerate(groups.items()):
            first = metrics[0]
            create: Callable[..., object] = {
                "counter": meter.create_observable_counter,
                "updowncounter": meter.create_observable_up_down_counter,
                "gauge": meter.create_observable_gauge,
            }[first.instrument_kind]
            callback = partial(self._observe, index, tuple(metrics))
            create(name, [callback], first.unit, first.description or first.help)
        # Made when the first pool asks for histograms; guarded by _lock.
        self._histograms: tuple[Histogram, ...] = ()
        self._wake = threading.Event()  # a tap is full: the recorder records it
        # Runs while some pool has a tap; guarded by _lock (a thread that finds itself
        # no longer there exits).
        self._recorder: threading.Thread | None = None

    def add(self, pool: ExportablePool, owner: Instrumentation, histograms: bool) -> None:
        check_exportable(pool)
        core = pool._core
        tap = TimingTap(TAP_LIMIT, self._wake.set) if histograms else None
        with self._lock:
            if owner.closed:
                raise ValueError("this instrumentation is closed")
            existing = self._entries.get(pool.name)
            if existing is not None and existing.pool() is not None:
                raise ValueError(f"a pool named {pool.name!r} is already instrumented")
            attributes = {POOL_ATTRIBUTE: pool.name}
            self._entries[pool.name] = _Entry(weakref.ref(pool), attributes, tap, core, owner)
            if existing is not None:
                self._record(existing, detach=True)
            if tap is not None:
                if not self._histograms:
                    self._histograms = tuple(
                        self._meter.create_histogram(
                            str(metric.instrument),
                            unit=metric.unit,
                            description=metric.help,
                            explicit_bucket_boundaries_advisory=DEFAULT_BUCKETS,
                        )
                        for metric in HISTOGRAMS
                    )
                core.attach_tap(tap)  # under our lock: release() cannot detach it first
                if self._recorder is None:
                    self._recorder = threading.Thread(
                        target=self._record_full_taps, name="threadpool_plus-otel", daemon=True
                    )
                    self._recorder.start()

    def release(self, owner: Instrumentation, pool: ExportablePool | None) -> None:
        """Stops exporting ``pool`` if ``owner`` added it, or (``None``) closes ``owner``."""
        with self._lock:
            if pool is None:
                owner.closed = True
            for name, entry in list(self._entries.items()):
                if entry.owner is owner and (pool is None or entry.pool() is pool):
                    del self._entries[name]
                    self._record(entry, detach=True)
            recorder = self._recorder
            if recorder is not None and not any(e.tap for e in self._entries.values()):
                self._recorder = None  # it exits when it wakes
                self._wake.set()
            else:
                recorder = None
        if recorder is not None and recorder is not threading.current_thread():
            recorder.join()

    # -- collection -------------------------------------------------------------------------

    def _observe(
        self, index: int, metrics: tuple[Metric, ...], options: CallbackOptions
    ) -> Iterable[Observation]:
        """One instrument's data points, from this collection's reading."""
        with self._lock:
            if index in self._served:  # a new collection: see the module notes
                self._refresh()
            self._served.add(index)
            cached = self._cached
        return [
            Observation(metric.value(stats), {**attributes, **dict(metric.attributes)})
            for stats, attributes in cached
            for metric in metrics
        ]

    def _refresh(self) -> None:
        """Reads every live pool, and records their pending timings. Lock held."""
        self._served = set()
        self._cached = []
        for name, entry in list(self._entries.items()):
            pool = entry.pool()
            if pool is None:  # collected: reported no more
                del self._entries[name]
                self._record(entry, detach=True)
                continue
            _, stats, _, _ = reading(pool)
            self._cached.append((stats, entry.attributes))
            self._record(entry)

    def _record(self, entry: _Entry, detach: bool = False) -> None:
        """Takes a pool's timings from its tap and records them: the slow part, without the
        pool's lock. Under ``_recording``, so that a collection waits for a batch the
        recorder thread has taken and not finished recording: it must see every task."""
        tap = entry.tap
        if tap is None:
            return
        wait_histogram, run_histogram = self._histograms
        attributes = entry.attributes
        with self._recording:
            waits, runs = (entry.core.detach_tap if detach else entry.core.drain_tap)(tap)
            for seconds in waits:
                wait_histogram.record(seconds, attributes)
            for seconds in runs:
                run_histogram.record(seconds, attributes)

    def _record_full_taps(self) -> None:
        """The recorder thread: drains the taps a fold found full, while it is wanted."""
        me = threading.current_thread()
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._recorder is not me:
                    return
                entries = [e for e in self._entries.values() if e.tap is not None]
            for entry in entries:
                self._record(entry)


# One export per meter provider (the global one included): see Instrumentation.
_exports_lock = threading.Lock()
_exports: weakref.WeakKeyDictionary[MeterProvider, _Export] = weakref.WeakKeyDictionary()


def instrument(
    *pools: ExportablePool,
    meter_provider: MeterProvider | None = None,
    histograms: bool = False,
) -> Instrumentation:
    """Exports ``pools`` through OpenTelemetry; returns the handle that stops it.

    Handles on one meter provider share its instruments: a pool's name may be exported
    only once per provider.

    Args:
        pools: The pools to export (a ``ThreadPoolExecutor``, or any pool built on
            threadpool_plus' core); their names become the ``threadpool.name`` attribute,
            so they must be distinct. More can be added later.
        meter_provider: The provider to use; default: the global one.
        histograms: Also record every task's queue wait and run time (opt-in: see the
            module notes for what it costs).

    Raises:
        TypeError: A pool is not a threadpool_plus pool, or ``histograms`` is not a bool.
        ValueError: Two pools share a name, or one of them is already exported through
            this meter provider.
    """
    if not isinstance(histograms, bool):
        raise TypeError(f"histograms must be a bool, not {type(histograms).__name__}")
    names: set[str] = set()
    for pool in pools:
        check_exportable(pool)
        if pool.name in names:
            raise ValueError(f"a pool named {pool.name!r} is already instrumented")
        names.add(pool.name)
    provider = get_meter_provider() if meter_provider is None else meter_provider
    with _exports_lock:
        export = _exports.get(provider)
        if export is None:
            meter = get_meter("threadpool_plus", __version__, provider)
            export = _exports[provider] = _Export(meter)
    handle = Instrumentation(export, histograms)
    try:
        for pool in pools:
            handle.add(pool)
    except BaseException:
        handle.close()  # a name another handle exports: this call exports nothing
        raise
    return handle
