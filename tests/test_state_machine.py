"""A property-based state machine over small pools.

Hypothesis drives submit, try_submit (on pools that reject, drop the oldest task or run
the task in the caller when full), failing tasks, caller cancellation, interrupts
(``cancel(interrupt=True)``), tasks with short deadlines, the release of gated tasks,
resize, thread starts that fail, and shutdown, in any order. After every step:
``submitted == completed + failed + cancelled + expired + active + queued``, no counter
decreases, ``0 <= overrunning <= active`` and the queue holds at most its capacity. At
the end every accepted future is settled exactly once and no thread of the pool is alive.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from concurrent.futures import CancelledError, Future
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests import _probe as probe
from tests._support import threads_named, wait_until
from threadpool_plus import PoolOverloaded, PoolStats, TaskTimeout, ThreadPoolExecutor

MONOTONIC = (
    "submitted",
    "completed",
    "failed",
    "cancelled",
    "expired",
    "rejected",
    "dropped",
    "caller_ran",
    "peak_workers",
)
_names = itertools.count()


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom


def gated(gate: threading.Event, machine_thread: int) -> bool:
    """Waits for ``gate`` on a worker; returns at once when run by the machine's own thread
    (``overflow="caller_runs"``), which must go on driving the pool."""
    if threading.get_ident() == machine_thread:
        return True
    return gate.wait(10.0)


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pool: ThreadPoolExecutor | None = None
        self.gates: list[threading.Event] = []
        self.futures: list[Future[Any]] = []
        self.settlements: dict[int, int] = {}  # id(future) -> done-callback calls
        self.last: PoolStats | None = None
        self.shut = False

    @initialize(
        workers=st.integers(1, 3),
        low=st.integers(0, 3),
        capacity=st.integers(0, 3),
        wait=st.sampled_from([0, 0.01]),
        overflow=st.sampled_from(["reject", "drop_oldest", "caller_runs"]),
    )
    def make(
        self,
        workers: int,
        low: int,
        capacity: int,
        wait: float,
        overflow: Literal["reject", "drop_oldest", "caller_runs"],
    ) -> None:
        # With a wait, a submit on a full pool waits in line: a failing task ending
        # meanwhile admits it.
        self.pool = ThreadPoolExecutor(
            workers,
            min_workers=min(low, workers),
            max_queue_size=capacity,
            submit_timeout=wait,
            overflow=overflow,
            idle_timeout=0.05,
            name=f"machine-{next(_names)}",
        )

    # -- helpers ---------------------------------------------------------------------------

    @property
    def live(self) -> ThreadPoolExecutor:
        assert self.pool is not None
        return self.pool

    def _track(self, future: Future[Any]) -> None:
        self.futures.append(future)
        self.settlements[id(future)] = 0

        def settled(done: Future[Any]) -> None:
            self.settlements[id(done)] += 1

        future.add_done_callback(settled)

    def _submit(self, fn: Any, *args: Any, try_only: bool, timeout: float | None = None) -> None:
        via = self.live if timeout is None else self.live.options(timeout=timeout)
        submit = via.try_submit if try_only else via.submit
        try:
            future = submit(fn, *args)
        except PoolOverloaded:
            assert not self.shut
        except RuntimeError as exc:  # shut down, or no thread could start (task settled)
            message = str(exc)
            assert self.shut or "can't start" in message, message
        else:
            assert not self.shut
            self._track(future)

    # -- rules -----------------------------------------------------------------------------

    @rule(try_only=st.booleans())
    def submit_gated(self, try_only: bool) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        self._submit(gated, gate, threading.get_ident(), try_only=try_only)

    @rule(try_only=st.booleans(), timeout=st.sampled_from([0.0, 0.002, 0.02]))
    def submit_with_a_deadline(self, try_only: bool, timeout: float) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        self._submit(gated, gate, threading.get_ident(), try_only=try_only, timeout=timeout)

    @precondition(lambda self: bool(self.futures))
    @rule(index=st.integers(0, 63))
    def interrupt(self, index: int) -> None:
        future: Any = self.futures[index % len(self.futures)]
        future.cancel(interrupt=True)

    @rule(try_only=st.booleans())
    def submit_failing(self, try_only: bool) -> None:
        self._submit(fail, try_only=try_only)

    @precondition(lambda self: bool(self.gates))
    @rule(index=st.integers(0, 63))
    def release(self, index: int) -> None:
        self.gates[index % len(self.gates)].set()

    @precondition(lambda self: bool(self.futures))
    @rule(index=st.integers(0, 63))
    def cancel(self, index: int) -> None:
        # An index, not sampled_from(self.futures): how many submits were accepted depends
        # on the threads' timing, and hypothesis needs the same draws when it replays.
        self.futures[index % len(self.futures)].cancel()

    @rule(high=st.integers(1, 3), low=st.integers(0, 3))
    def resize(self, high: int, low: int) -> None:
        try:
            self.live.resize(min_workers=min(low, high), max_workers=high)
        except RuntimeError:
            assert self.shut

    @rule()
    def submit_with_a_failing_start(self) -> None:
        with probe.failing_thread_starts(lambda: RuntimeError("can't start new thread")):
            self._submit(pow, 2, 2, try_only=False)

    @rule(cancel=st.booleans())
    def shutdown(self, cancel: bool) -> None:
        self.live.shutdown(wait=False, cancel_futures=cancel)
        self.shut = True

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def counters_add_up(self) -> None:
        if self.pool is None:
            return
        stats = self.pool.stats()
        accounted = stats.completed + stats.failed + stats.cancelled + stats.expired
        assert stats.submitted == accounted + stats.active + stats.queued, stats
        assert 0 <= stats.overrunning <= stats.active, stats
        assert stats.dropped <= stats.cancelled, stats
        assert stats.caller_ran <= stats.completed + stats.failed + stats.expired, stats
        assert stats.queue_capacity == 0 or stats.queued <= stats.queue_capacity, stats
        assert stats.workers <= max(stats.max_workers, stats.peak_workers), stats
        if self.last is not None:
            for field in MONOTONIC:
                assert getattr(stats, field) >= getattr(self.last, field), (field, stats)
        self.last = stats

    def teardown(self) -> None:
        if self.pool is None:
            return
        for gate in self.gates:
            gate.set()
        self.pool.shutdown(wait=True)
        assert all(future.done() for future in self.futures)
        for future in self.futures:
            with contextlib.suppress(Boom, CancelledError, RuntimeError, TaskTimeout):
                future.result(timeout=0)  # raises nothing else, and never times out
        wait_until(lambda: all(self.settlements[id(f)] == 1 for f in self.futures))
        stats = self.pool.stats()
        assert (stats.active, stats.queued, stats.workers, stats.overrunning) == (0, 0, 0, 0)
        ended = stats.completed + stats.failed + stats.cancelled + stats.expired
        assert stats.submitted == ended, stats
        assert stats.submitted >= len(self.futures)
        assert not [t for t in threads_named(self.pool.name) if t.is_alive()]


PoolMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPoolMachine = pytest.mark.timeout(240)(PoolMachine.TestCase)
