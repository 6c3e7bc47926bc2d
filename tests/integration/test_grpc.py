"""gRPC's synchronous server running its handlers on the pool: ``grpc.server(pool)``.

How gRPC uses the pool (grpc/_server.py, checked against grpcio 1.85): one poller thread
takes every event off the completion queue, and for each new call it runs ``pool.submit``
with the server's lock held, catching nothing. The submitted task then waits for that same
poller to deliver the call's request message. ``maximum_concurrent_rpcs`` counts a call from
its ``submit`` until a done-callback of its future, and answers ``RESOURCE_EXHAUSTED`` above
the limit without submitting anything.

So a bounded pool is only safe when gRPC's own limit keeps the poller from ever finding it
full: ``maximum_concurrent_rpcs = max_workers + max_queue_size``, a pool used by that server
alone. Allow one call more and a burst soon makes the poller meet a full pool. With
``submit_timeout=0`` the ``PoolOverloaded`` kills it: every call then ends in
``DEADLINE_EXCEEDED``, accepted ones included, and ``shutdown(wait=True)`` never returns,
since accepted tasks wait forever for their request. With ``submit_timeout=None`` it waits
for room that only its own progress could make, holding the server's lock, so even
``server.stop()`` hangs. The limit is exact because the pool frees a task's slot before its
future resolves, so gRPC's count never drops before the pool has room:
``test_grpc_never_finds_the_pool_full`` checks that at every submit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, NamedTuple, ParamSpec, TypeVar

import pytest

from tests._subprocess import run_script
from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from tests.integration._require import library
from threadpool_plus import ThreadPoolExecutor

library("grpc")

import grpc  # noqa: E402  (after the check that skips or fails when grpcio is missing)

P = ParamSpec("P")
T = TypeVar("T")

SERVICE = "threadpool_plus.test.Echo"
METHOD = f"/{SERVICE}/Call"

Handler = Callable[[bytes, grpc.ServicerContext], bytes]


class Served(NamedTuple):
    server: grpc.Server
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes]  # bytes in, bytes out: no protoc


@contextmanager
def serving(
    pool: ThreadPoolExecutor, handler: Handler, *, maximum_concurrent_rpcs: int | None = None
) -> Iterator[Served]:
    """A real server on 127.0.0.1 (a free port) whose one method runs ``handler`` on
    ``pool``, and a client channel to it. A server the test did not stop is stopped at exit
    (cancelling its calls)."""
    method: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(handler)
    server = grpc.server(
        pool,
        handlers=[grpc.method_handlers_generic_handler(SERVICE, {"Call": method})],
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Served(server, channel.unary_unary(METHOD))
    finally:
        server.stop(grace=None).wait(DEADLINE)


def stop_then_shut_down(server: grpc.Server, pool: ThreadPoolExecutor) -> float:
    """Stops the server (it submits nothing after that), then shuts the pool down: the
    order that works. Fails if either takes longer than the deadline; returns the seconds
    both took."""
    started = time.monotonic()
    assert server.stop(grace=DEADLINE).wait(DEADLINE), "server.stop() did not finish"
    shutdown = threading.Thread(target=pool.shutdown, kwargs={"wait": True})
    shutdown.start()
    shutdown.join(DEADLINE)
    assert not shutdown.is_alive(), "pool.shutdown(wait=True) did not return"
    return time.monotonic() - started


def code_of(call: grpc.Future[bytes]) -> grpc.StatusCode:
    """The status a finished call ended with."""
    assert isinstance(call, grpc.Call)  # what stub.future() returns is both
    return call.code()


def thread_name() -> str:
    return threading.current_thread().name


@pytest.mark.timeout(30)
def test_unbounded_pool_serves_concurrent_calls(make_pool: PoolFactory) -> None:
    """With the standard configuration (``max_workers=4``, unbounded queue) many concurrent
    calls are all answered, by handlers running on the pool's threads, four at a time; the
    counters add up, and stopping the server then the pool returns promptly."""
    pool = make_pool(4)
    meet = threading.Barrier(4)  # the first four calls wait for each other: four run at once

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        if request.startswith(b"meet"):
            meet.wait(DEADLINE)
        return request.upper() + b" on " + thread_name().encode()

    requests = [b"meet %d" % i if i < 4 else b"call %d" % i for i in range(40)]
    with serving(pool, handle) as served:
        calls = [served.call.future(request, timeout=DEADLINE) for request in requests]
        replies = [call.result() for call in calls]
        elapsed = stop_then_shut_down(served.server, pool)

    threads = set()
    for request, reply in zip(requests, replies, strict=True):
        answer, _, thread = reply.partition(b" on ")
        assert answer == request.upper()
        assert thread.decode().startswith(pool.name + "_"), thread
        threads.add(thread)
    assert len(threads) == 4
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.failed, stats.rejected) == (40, 40, 0, 0)
    assert (stats.workers, stats.peak_workers) == (0, 4), stats
    assert not threads_named(pool.name)
    assert elapsed < DEADLINE


@pytest.mark.timeout(30)
def test_bounded_pool_with_grpc_limit_rejects_the_excess_calls(make_pool: PoolFactory) -> None:
    """The safe bounded configuration: ``max_workers=2, max_queue_size=2,
    submit_timeout=None`` and ``maximum_concurrent_rpcs=4`` (= 2 + 2). Of seven concurrent
    calls, gRPC answers the three beyond four with ``RESOURCE_EXHAUSTED`` at once while the
    four it accepted are still held in the pool; the pool itself never refuses a task. Once
    the handlers are released the accepted calls succeed, and the server still serves a new
    call: its poller thread is alive."""
    max_workers, max_queue_size = 2, 2
    pool = make_pool(max_workers, max_queue_size=max_queue_size, submit_timeout=None)
    gate = Gate()

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        gate.wait()
        return request + b" on " + thread_name().encode()

    with serving(pool, handle, maximum_concurrent_rpcs=max_workers + max_queue_size) as served:
        calls = [served.call.future(b"call %d" % i, timeout=DEADLINE) for i in range(7)]
        # Two handlers run (held by the gate) and two calls wait in the pool's queue...
        gate.wait_entered(max_workers)
        wait_until(lambda: pool.stats().queued == max_queue_size)
        # ...and the other three are answered while the gate is still closed.
        wait_until(lambda: sum(call.done() for call in calls) == 3)
        refused = [call for call in calls if call.done()]
        assert [code_of(call) for call in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
        stats = pool.stats()
        assert (stats.submitted, stats.active, stats.queued, stats.rejected) == (4, 2, 2, 0)

        gate.open()
        accepted = [call for call in calls if call not in refused]
        for call in accepted:
            request, _, thread = call.result().partition(b" on ")
            assert request.startswith(b"call ")
            assert thread.decode().startswith(pool.name + "_")
        assert served.call(b"later", timeout=DEADLINE).startswith(
            b"later on " + pool.name.encode()
        )
        stop_then_shut_down(served.server, pool)

    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.rejected, stats.workers) == (5, 5, 0, 0)


class LoadAtSubmit(ThreadPoolExecutor):
    """The pool, noting how many of its slots were taken each time ``submit`` was called
    (a subclass that wraps ``submit``, as tqdm or OpenTelemetry do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loads: list[int] = []

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        stats = self.stats()
        self.loads.append(stats.active + stats.queued)
        return super().submit(fn, *args, **kwargs)


@pytest.mark.timeout(30)
def test_grpc_never_finds_the_pool_full() -> None:
    """Under churn (hundreds of quick calls, most refused by gRPC's limit), every time
    gRPC's poller called ``submit`` the pool had a free slot: gRPC's count of concurrent
    calls drops only after the pool has freed the call's slot (the pool frees it before
    the future resolves; gRPC counts down in a done-callback). So
    ``maximum_concurrent_rpcs = max_workers + max_queue_size`` leaves no race."""
    max_workers, max_queue_size = 2, 2
    capacity = max_workers + max_queue_size
    pool = LoadAtSubmit(max_workers, max_queue_size=max_queue_size, name="grpc-churn")
    try:
        echo: Handler = lambda request, context: request  # noqa: E731
        with serving(pool, echo, maximum_concurrent_rpcs=capacity) as served:
            calls = [served.call.future(b"%d" % i, timeout=DEADLINE) for i in range(400)]
            for call in calls:
                call.exception()  # waits for the call to finish, whatever its outcome
            stop_then_shut_down(served.server, pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    codes = [code_of(call) for call in calls]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, set(codes)
    stats = pool.stats()
    assert codes.count(grpc.StatusCode.OK) == stats.submitted == stats.completed == len(pool.loads)
    assert stats.rejected == 0
    assert max(pool.loads) < capacity, max(pool.loads)


# The unsafe configuration, in a subprocess: afterwards the pool cannot be shut down.
UNSAFE_SERVER = """
    import os, sys, threading
    os.environ["GRPC_VERBOSITY"] = "ERROR"  # no INFO lines from gRPC's core on stderr
    import grpc
    from tests._support import Gate, wait_until
    from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

    deaths = []
    threading.excepthook = lambda args: deaths.append((args.exc_type, args.thread.name))

    pool = ThreadPoolExecutor(1, max_queue_size=1, submit_timeout=0, name="unsafe")
    gate = Gate()

    def handle(request, context):
        gate.wait()
        return request

    method = grpc.unary_unary_rpc_method_handler(handle)
    server = grpc.server(pool, handlers=[grpc.method_handlers_generic_handler("s", {"m": method})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/s/m")

    running = call.future(b"running", timeout=1)
    gate.wait_entered(1)                            # the only thread runs it
    queued = call.future(b"queued", timeout=1)      # the queue's only slot
    wait_until(lambda: pool.stats().queued == 1)
    overflow = call.future(b"overflow", timeout=1)  # the poller's submit raises
    wait_until(lambda: deaths)
    print("poller died:", deaths[0][0].__name__, deaths[0][1].endswith("(_serve)"))
    gate.open()
    for future in (running, queued, overflow):
        print(future.result() if future.code() == grpc.StatusCode.OK else future.code().name)
    channel.close()
    print("server stopped:", server.stop(grace=0).wait(0.3))
    shutdown = threading.Thread(target=pool.shutdown, daemon=True)
    shutdown.start()
    shutdown.join(0.3)
    print("pool shut down:", not shutdown.is_alive(), pool.stats().active)
    sys.stdout.flush()
    os._exit(0)  # the stuck worker would hang interpreter exit
    """


@pytest.mark.slow
def test_unsafe_configuration_kills_the_poller() -> None:
    """The symptom of a bounded pool without gRPC's limit: with ``submit_timeout=0`` the
    first ``PoolOverloaded`` kills gRPC's poller thread. The call that was already running
    is answered, but the accepted, queued one and the refused one both end in
    ``DEADLINE_EXCEEDED`` (the queued task waits forever for its request message, which only
    the poller could deliver), the server never finishes stopping, and
    ``shutdown(wait=True)`` does not return."""
    output = run_script(UNSAFE_SERVER)
    assert output.splitlines() == [
        "poller died: PoolOverloaded True",
        "b'running'",
        "DEADLINE_EXCEEDED",
        "DEADLINE_EXCEEDED",
        "server stopped: False",
        "pool shut down: False 1",
    ]
