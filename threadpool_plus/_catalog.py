"""The one catalog of the metrics a pool exports, shared by both exporters.

Each ``Metric`` names its Prometheus family and its OpenTelemetry instrument, its kind in
each, its unit, its help text and how it reads a ``PoolStats``: ``prometheus.py`` and
``otel.py`` only loop over ``COUNTERS``, ``GAUGES`` and ``HISTOGRAMS``, so a new counter
is added here and nowhere else. Nothing here imports ``prometheus_client`` or
``opentelemetry``.

Also here: what an exporter accepts. An *exportable pool* is any object with a ``name``
(``str``) and a ``_core`` that is a ``PoolCore``, whose ``metrics()`` reads counters, gauges
and histograms in one critical section. ``ThreadPoolExecutor`` is one; so is any other
backend built on ``PoolCore`` (a ``DaskExecutor``). Exporters hold pools by weak reference,
so an exportable pool must also accept one (``__weakref__``).

OpenTelemetry names follow the conventions (dotted, lowercase, singular, units in UCUM such
as ``{task}`` and ``s``), modelled on ``jvm.executor.*`` (proposed) and
``dotnet.thread_pool.*`` (stable): one instrument per counter, because the counters
overlap (``dropped`` is part of ``cancelled``, ``caller_ran`` of ``completed`` and
``failed``, ``submitted`` of everything), and summing one instrument's data points over an
attribute must mean something. The thread gauges are the exception that convention makes:
``threadpool.thread.count`` by ``threadpool.thread.state`` (``idle``, ``busy``), whose sum
is the Prometheus ``threadpool_workers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ._histogram import HistogramSnapshot
from ._pool import PoolCore
from ._stats import PoolStats

__all__ = [
    "COUNTERS",
    "GAUGES",
    "HISTOGRAMS",
    "POOL_ATTRIBUTE",
    "ExportablePool",
    "Metric",
    "Reading",
    "check_exportable",
    "missing_extra",
    "reading",
]

# The OpenTelemetry attribute that carries the pool's name (Prometheus: the ``pool`` label),
# as ``jvm.executor.name`` carries an executor's.
POOL_ATTRIBUTE = "threadpool.name"
THREAD_STATE = "threadpool.thread.state"
_THREADS_BY_STATE = "Live worker threads, by threadpool.thread.state (idle, busy)."


@dataclass(frozen=True)
class Metric:
    """One exported metric.

    Attributes:
        family: The Prometheus family name (a counter's without ``_total``, which
            ``prometheus_client`` appends); its unit, if any, is its suffix (``_seconds``).
        kind: ``"counter"``, ``"gauge"`` or ``"histogram"`` (Prometheus).
        help: The help text (both exporters).
        instrument: The OpenTelemetry instrument name; ``None`` if it is not exported there
            (it is the sum of other data points).
        instrument_kind: ``"counter"`` (observable counter), ``"updowncounter"``
            (observable up-down counter: additive across pools), ``"gauge"`` (observable
            gauge: not additive) or ``"histogram"`` (synchronous, recorded per task).
        unit: The OpenTelemetry unit (UCUM: ``{task}``, ``{thread}``, ``s``).
        read: How its value is read from a ``PoolStats``; ``None`` for histograms.
        attributes: Attributes its OpenTelemetry data point carries besides the pool's name
            (data points of one instrument differ by them).
        description: The OpenTelemetry instrument's description when it is not ``help``
            (an instrument whose data points are several families).
    """

    family: str
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    instrument: str | None
    instrument_kind: Literal["counter", "updowncounter", "gauge", "histogram"]
    unit: str
    read: Callable[[PoolStats], int] | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    description: str = ""  # the instrument's, when not ``help`` (data points by attribute)

    def value(self, stats: PoolStats) -> int:
        """This counter's or gauge's value in ``stats``."""
        if self.read is None:
            raise TypeError(f"{self.family} is a histogram: it has no value in PoolStats")
        return self.read(stats)


def _counter(name: str, help: str, read: Callable[[PoolStats], int]) -> Metric:
    """A task counter: ``threadpool_tasks_<name>_total`` / ``threadpool.task.<name>``."""
    return Metric(f"threadpool_tasks_{name}", "counter", help, f"threadpool.task.{name}",
                  "counter", "{task}", read)  # fmt: skip


COUNTERS: tuple[Metric, ...] = (
    _counter(
        "submitted",
        "Tasks accepted by the pool; rejected submissions are not included.",
        lambda s: s.submitted,
    ),
    _counter("completed", "Tasks that returned normally.", lambda s: s.completed),
    _counter(
        "failed",
        "Tasks that raised, or failed because an initializer broke the pool.",
        lambda s: s.failed,
    ),
    _counter(
        "cancelled",
        "Accepted tasks cancelled before they started, or interrupted while running.",
        lambda s: s.cancelled,
    ),
    _counter(
        "expired",
        "Tasks whose deadline passed: never started, or since returned.",
        lambda s: s.expired,
    ),
    _counter(
        "rejected",
        "Submissions refused with PoolOverloaded because the queue was full.",
        lambda s: s.rejected,
    ),
    _counter(
        "dropped",
        "Queued tasks cancelled to make room (overflow='drop_oldest'); also in cancelled.",
        lambda s: s.dropped,
    ),
    _counter(
        "caller_ran",
        "Tasks run by their submitting thread (overflow='caller_runs'); also completed or failed.",
        lambda s: s.caller_ran,
    ),
)

GAUGES: tuple[Metric, ...] = (
    Metric("threadpool_workers", "gauge", "Live worker threads.", None, "updowncounter",
           "{thread}", lambda s: s.workers),
    Metric("threadpool_idle_workers", "gauge", "Worker threads waiting for work.",
           "threadpool.thread.count", "updowncounter", "{thread}", lambda s: s.idle_workers,
           ((THREAD_STATE, "idle"),), _THREADS_BY_STATE),
    Metric("threadpool_busy_workers", "gauge", "Worker threads not idle.",
           "threadpool.thread.count", "updowncounter", "{thread}", lambda s: s.busy_workers,
           ((THREAD_STATE, "busy"),), _THREADS_BY_STATE),
    Metric("threadpool_active_tasks", "gauge", "Tasks running now.", "threadpool.task.active",
           "updowncounter", "{task}", lambda s: s.active),
    Metric("threadpool_overrunning_tasks", "gauge",
           "Tasks running past their deadline; also counted in threadpool_active_tasks.",
           "threadpool.task.overrunning", "updowncounter", "{task}", lambda s: s.overrunning),
    Metric("threadpool_queued_tasks", "gauge", "Accepted tasks waiting for a thread.",
           "threadpool.queue.length", "updowncounter", "{task}", lambda s: s.queued),
    Metric("threadpool_waiting_submitters", "gauge",
           "Callers blocked in submit or map, waiting for room in a full queue.",
           "threadpool.submitter.waiting", "updowncounter", "{submitter}",
           lambda s: s.waiting_submitters),
    Metric("threadpool_queue_capacity", "gauge", "Most tasks the queue holds (0 means unbounded).",
           "threadpool.queue.capacity", "updowncounter", "{task}", lambda s: s.queue_capacity),
    Metric("threadpool_min_workers", "gauge", "Threads kept alive even when idle.",
           "threadpool.thread.min", "updowncounter", "{thread}", lambda s: s.min_workers),
    Metric("threadpool_max_workers", "gauge", "Most threads run at once.",
           "threadpool.thread.limit", "updowncounter", "{thread}", lambda s: s.max_workers),
    Metric("threadpool_peak_workers", "gauge", "Most live threads seen at once.",
           "threadpool.thread.peak", "gauge", "{thread}", lambda s: s.peak_workers),
)  # fmt: skip

# In the order of ``PoolCore.metrics()``: queue wait, then run time.
HISTOGRAMS: tuple[Metric, ...] = (
    Metric("threadpool_task_queue_wait_seconds", "histogram",
           "Seconds from a task's acceptance to its start.",
           "threadpool.task.queue_wait.duration", "histogram", "s"),
    Metric("threadpool_task_run_seconds", "histogram",
           "Seconds a task ran, until it returned or raised.",
           "threadpool.task.run.duration", "histogram", "s"),
)  # fmt: skip


# -- what an exporter accepts ---------------------------------------------------------------


class ExportablePool(Protocol):
    """What an exporter needs of a pool: its name and its core (read-only here)."""

    @property
    def name(self) -> str:
        """The pool's name: the ``pool`` label, the ``threadpool.name`` attribute."""

    @property
    def _core(self) -> PoolCore:
        """The core whose ``metrics()`` the exporters read."""


# (pool name, stats, queue-wait histogram, run-time histogram), all from one instant.
Reading = tuple[str, PoolStats, HistogramSnapshot, HistogramSnapshot]


def check_exportable(pool: object) -> None:
    """Raises ``TypeError`` unless ``pool`` is an exportable pool (see the module notes).

    Duck-typed on purpose: any backend on ``PoolCore`` qualifies, not only the thread pool.
    """
    if not isinstance(getattr(pool, "_core", None), PoolCore) or not isinstance(
        getattr(pool, "name", None), str
    ):
        raise TypeError(f"expected a threadpool_plus pool, not {type(pool).__name__}")


def reading(pool: ExportablePool) -> Reading:
    """One consistent reading of ``pool`` (one critical section of its core)."""
    return (pool.name, *pool._core.metrics())


def missing_extra(module: str, extra: str, error: ImportError) -> ImportError:
    """The error an optional integration raises when its extra is not installed."""
    return ImportError(
        f"threadpool_plus.{module} needs the {extra!r} extra: "
        f"pip install threadpool-plus[{extra}] ({error})"
    )
