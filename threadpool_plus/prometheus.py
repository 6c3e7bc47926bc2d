"""Prometheus export: a collector that reads pools at scrape time, and a ``/metrics`` server.

Needs the ``prometheus`` extra (``pip install threadpool-plus[prometheus]``). Nothing is
registered at import; pass the registry you scrape::

    from prometheus_client import REGISTRY
    from threadpool_plus.prometheus import PoolCollector, serve_metrics

    PoolCollector(pool, registry=REGISTRY)
    server = serve_metrics(9464)          # http://127.0.0.1:9464/metrics

Every family carries a ``pool`` label (the pool's ``name``). The counters and gauges are
one ``stats()`` snapshot; the histograms are recorded by the pool itself and read in the
same critical section, so a scrape is consistent.

Counters (monotonic for the pool's lifetime):

- ``threadpool_tasks_submitted_total``: tasks accepted by ``submit``, ``try_submit`` or
  ``map``. Rejected submissions are *not* counted here.
- ``threadpool_tasks_completed_total``: tasks that returned normally.
- ``threadpool_tasks_failed_total``: tasks that raised (any ``BaseException``), or that
  failed with ``BrokenThreadPool`` because an initializer failed.
- ``threadpool_tasks_cancelled_total``: accepted tasks cancelled before they started (by
  the caller, or by ``shutdown(drain=False)``), counted when the pool discards them, and
  running tasks interrupted (``future.cancel(interrupt=True)``), counted when they return.
- ``threadpool_tasks_expired_total``: tasks whose deadline passed (``options(timeout=)``,
  ``task_timeout``): never started, or since returned. Their futures failed with
  ``TaskTimeout``; they are not counted as failed.
- ``threadpool_tasks_rejected_total``: submissions refused with ``PoolOverloaded``.
- ``threadpool_tasks_dropped_total``: queued tasks cancelled to make room
  (``overflow="drop_oldest"``); also in ``cancelled``.
- ``threadpool_tasks_caller_ran_total``: tasks run by their submitting thread
  (``overflow="caller_runs"``); also in ``completed`` or ``failed``.

Gauges (the value at scrape time):

- ``threadpool_workers``, ``threadpool_idle_workers``, ``threadpool_busy_workers``: live
  threads, those waiting for work, and the others.
- ``threadpool_active_tasks``: tasks running (handed to a thread, not finished).
- ``threadpool_overrunning_tasks``: running tasks whose deadline passed (their futures
  already failed with ``TaskTimeout``); they are also counted in ``active_tasks``.
- ``threadpool_queued_tasks``: accepted tasks waiting for a thread.
- ``threadpool_waiting_submitters``: callers blocked in ``submit`` (or ``map``) waiting
  for room in a full queue (bounded by ``max_waiting_submitters``).
- ``threadpool_queue_capacity``: ``max_queue_size`` (0 means unbounded).
- ``threadpool_min_workers``, ``threadpool_max_workers``: the current limits.
- ``threadpool_peak_workers``: the most live threads seen at once.

Histograms (seconds; buckets set by the pool's ``histogram_buckets``):

- ``threadpool_task_queue_wait_seconds``: from acceptance to the start of the task.
- ``threadpool_task_run_seconds``: from the start of the task until it returned or raised.

Both observe exactly the tasks counted as completed or failed: not one that never ran
(cancelled, expired in the queue, failed with ``BrokenThreadPool``), nor one counted as
expired or cancelled when it returned.

At all times ``submitted_total == completed_total + failed_total + cancelled_total +
expired_total + active_tasks + queued_tasks`` within one scrape.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ._catalog import (
    COUNTERS,
    GAUGES,
    HISTOGRAMS,
    ExportablePool,
    Reading,
    check_exportable,
    missing_extra,
    reading,
)

try:
    from prometheus_client import REGISTRY, make_wsgi_app
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as error:
    raise missing_extra("prometheus", "prometheus", error) from error

__all__ = ["MetricsServer", "PoolCollector", "serve_metrics"]

# The family class of each catalog kind but histograms (which take buckets, not a value).
_FAMILIES: dict[str, Callable[..., CounterMetricFamily | GaugeMetricFamily]] = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
}


class PoolCollector(Collector):
    """A ``prometheus_client`` collector that reads one or more pools at scrape time.

    It holds the pools weakly: a pool that is garbage-collected drops out of the scrape.

    Args:
        pools: The pools to export; their names become the ``pool`` label, so they must
            be distinct.
        registry: If given, the collector registers itself there.

    Raises:
        TypeError: Something other than a threadpool_plus pool was passed.
        ValueError: Two pools share a name.
    """

    def __init__(self, *pools: ExportablePool, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, weakref.ref[ExportablePool]] = {}  # guarded by _lock
        for pool in pools:
            self.add(pool)
        if registry is not None:
            registry.register(self)

    def add(self, pool: ExportablePool) -> None:
        """Starts exporting ``pool``."""
        check_exportable(pool)
        with self._lock:
            existing = self._pools.get(pool.name)
            if existing is not None and existing() is not None:
                raise ValueError(f"a pool named {pool.name!r} is already exported")
            self._pools[pool.name] = weakref.ref(pool)

    def remove(self, pool: ExportablePool) -> None:
        """Stops exporting ``pool``."""
        with self._lock:
            if self._pools.get(pool.name, lambda: None)() is pool:
                del self._pools[pool.name]

    def _live_pools(self) -> list[ExportablePool]:
        with self._lock:
            pools = [(name, ref()) for name, ref in self._pools.items()]
            for name, pool in pools:
                if pool is None:
                    del self._pools[name]
        return [pool for _, pool in pools if pool is not None]

    def describe(self) -> Iterable[Metric]:
        """The families, without samples: lets a registry detect duplicate names."""
        return self._families([])

    def collect(self) -> Iterable[Metric]:
        """Reads every pool's counters, gauges and histograms."""
        return self._families([reading(pool) for pool in self._live_pools()])

    @staticmethod
    def _families(readings: list[Reading]) -> Iterator[Metric]:
        for metric in COUNTERS + GAUGES:
            family = _FAMILIES[metric.kind](metric.family, metric.help, labels=["pool"])
            for pool, stats, _, _ in readings:
                family.add_metric([pool], metric.value(stats))
            yield family
        for index, metric in enumerate(HISTOGRAMS):
            histogram = HistogramMetricFamily(metric.family, metric.help, labels=["pool"])
            for pool, _, *histograms in readings:
                hist = histograms[index]
                buckets = [
                    (repr(bound), count)
                    for bound, count in zip(hist.bounds, hist.cumulative, strict=False)
                ]
                buckets.append(("+Inf", hist.count))
                histogram.add_metric([pool], buckets, hist.sum)
            yield histogram


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """A running ``/metrics`` server; ``stop()`` (or leaving a ``with`` block) ends it.

    Attributes:
        host: The address it is bound to.
        port: The port it listens on (useful after asking for port 0).
        url: The URL of the metrics page.
    """

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.host = host if isinstance(host, str) else bytes(host).decode()
        self.port: int = port
        self.url = f"http://{self.host}:{self.port}/metrics"
        self._thread = threading.Thread(
            target=server.serve_forever, name="threadpool_plus-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the socket; calling it again is harmless."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_metrics(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serves ``registry`` (default: ``prometheus_client.REGISTRY``) on ``/metrics``.

    Binds to loopback unless ``addr`` says otherwise: exposing metrics beyond the host is
    a decision to make explicitly. Port 0 picks a free port (see ``MetricsServer.port``).

    Raises:
        OSError: The address could not be bound.
    """
    app = make_wsgi_app(REGISTRY if registry is None else registry)
    server = make_server(
        addr, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    return MetricsServer(server)
