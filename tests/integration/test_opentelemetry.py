"""OpenTelemetry's threading instrumentation carries a span's context into our pool's tasks.

``ThreadingInstrumentor`` wraps ``concurrent.futures.ThreadPoolExecutor.submit`` (with wrapt)
so that a task runs in its submitter's trace context. Our pool overrides ``submit``; it
applies the same wrappers to its own ``submit`` and ``try_submit`` when it is created, and
``map`` goes through ``submit``. Each test compares with the standard pool, instrumented the
same way.
"""

from __future__ import annotations

import concurrent.futures
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._support import DEADLINE, threads_named, wait_until
from tests.integration._require import library

library("opentelemetry.instrumentation.threading")
library("opentelemetry.sdk")

from opentelemetry.instrumentation.threading import ThreadingInstrumentor  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from threadpool_plus import ThreadPoolExecutor  # noqa: E402

pytestmark = pytest.mark.timeout(30)

Pool = Callable[..., concurrent.futures.ThreadPoolExecutor]
KINDS: dict[str, Pool] = {
    "standard": concurrent.futures.ThreadPoolExecutor,
    "plus": ThreadPoolExecutor,
}


class Traces:
    """A tracer that keeps its finished spans, and tasks that open spans with it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer(__name__)

    def task(self, name: str) -> Callable[..., str]:
        """A task that opens a span of its own under whatever span is current; returns
        its trace id."""

        def run(_: Any = None) -> str:
            with self.tracer.start_as_current_span(name) as span:
                return format(span.get_span_context().trace_id, "032x")

        return run

    def parents(self, name: str) -> list[int | None]:
        """The parent span id of each finished span called ``name``."""
        spans: tuple[ReadableSpan, ...] = self.exporter.get_finished_spans()
        return [s.parent.span_id if s.parent else None for s in spans if s.name == name]


@pytest.fixture
def traces() -> Iterator[Traces]:
    """Instruments threading for the test, as an application does at start-up."""
    ThreadingInstrumentor().instrument()
    try:
        yield Traces()
    finally:
        ThreadingInstrumentor().uninstrument()


@pytest.mark.parametrize("kind", KINDS)
def test_submit_and_map_tasks_run_in_the_submitters_span(traces: Traces, kind: str) -> None:
    with KINDS[kind](2) as pool:
        # Start both threads outside any span: the instrumentation also hands a thread the
        # context of whoever started it, which must not be what the tasks below rely on.
        barrier = threading.Barrier(2)
        for future in [pool.submit(barrier.wait, DEADLINE) for _ in range(2)]:
            future.result()
        with traces.tracer.start_as_current_span("request") as root:
            submitted = pool.submit(traces.task("submitted"))
            mapped = list(pool.map(traces.task("mapped"), range(5)))
            assert submitted.result()
    root_id = root.get_span_context().span_id
    assert set(mapped) == {format(root.get_span_context().trace_id, "032x")}
    assert traces.parents("submitted") == [root_id]
    assert traces.parents("mapped") == [root_id] * 5


def test_a_lazy_map_carries_the_span(traces: Traces) -> None:
    # min_workers: the threads start now, outside the span (see the test above).
    with (
        ThreadPoolExecutor(2, min_workers=2) as pool,
        traces.tracer.start_as_current_span("r") as root,
    ):
        assert len(list(pool.map(traces.task("lazily"), range(5), buffersize=2))) == 5
    assert traces.parents("lazily") == [root.get_span_context().span_id] * 5


def test_try_submit_carries_the_span_too(traces: Traces) -> None:
    with (
        ThreadPoolExecutor(1, min_workers=1) as pool,
        traces.tracer.start_as_current_span("r") as root,
    ):
        pool.try_submit(traces.task("tried")).result()
    assert traces.parents("tried") == [root.get_span_context().span_id]


@pytest.mark.parametrize("kind", KINDS)
def test_a_task_submitted_outside_any_span_has_no_parent(traces: Traces, kind: str) -> None:
    with KINDS[kind](1) as pool:
        with traces.tracer.start_as_current_span("earlier"):
            pool.submit(traces.task("inside")).result()  # the thread starts in this span
        pool.submit(traces.task("outside")).result()
    assert traces.parents("outside") == [None]


def test_without_instrumentation_a_new_pool_is_left_alone() -> None:
    ThreadingInstrumentor().instrument()
    ThreadingInstrumentor().uninstrument()
    with ThreadPoolExecutor(1) as pool:
        assert "submit" not in vars(pool)
        assert pool.submit(lambda: 7).result() == 7


def test_an_instrumented_pool_dropped_without_shutdown_is_still_collected(
    traces: Traces,
) -> None:
    pool = ThreadPoolExecutor(1, name="otel-dropped")
    assert "submit" in vars(pool)  # the wrapped submit refers back to the pool: a cycle
    pool.submit(traces.task("x")).result()
    del pool
    gc.collect()
    wait_until(lambda: not threads_named("otel-dropped"))
