"""CPython's own tests of the standard future and its helpers, run against this package.

- ``test_future``: ``Future`` itself, with every future it makes a ``TrackedFuture``;
- the thread-pool classes of ``test_wait`` and ``test_as_completed``: their executor is
  this package's ``ThreadPoolExecutor`` and their ready-made futures are ``TrackedFuture``s
  (or, in a second run, the standard ``Future``s they mix with ours);
- asyncio's ``wrap_future`` tests, wrapping futures from this pool.

Passing them is what admits a Python minor version to ``_future.VERIFIED_MINORS``. They
exist only where the interpreter ships CPython's ``test`` package, as a package
(``test.test_concurrent_futures.test_wait``...) or, before 3.12, as one module; each test
here skips, saying which, where its part is missing (pyenv's 3.11 and 3.12 lack the
concurrent.futures tests but have asyncio's).
"""

from __future__ import annotations

import logging
import sys
import unittest
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from threadpool_plus import PoolStats, ThreadPoolExecutor
from threadpool_plus._future import TrackedFuture

PYTHON = "Python {}.{}.{}".format(*sys.version_info[:3])

# These match the text "<Future at 0x..." in repr(future), or in a message that embeds
# it; ours says "<TrackedFuture at 0x...", as the repr of every subclass does.
NAMES_ITS_CLASS = {"test_repr", "test_multiple_set_result", "test_multiple_set_exception"}


# The futures CPython's tests build at import, rebuilt as TrackedFutures.
SAMPLES: dict[str, dict[str, object]] = {
    "PENDING_FUTURE": {"state": PENDING},
    "RUNNING_FUTURE": {"state": RUNNING},
    "CANCELLED_FUTURE": {"state": CANCELLED},
    "CANCELLED_AND_NOTIFIED_FUTURE": {"state": CANCELLED_AND_NOTIFIED},
    "EXCEPTION_FUTURE": {"state": FINISHED, "exception": OSError()},
    "SUCCESSFUL_FUTURE": {"state": FINISHED, "result": 42},
}


def cpython_concurrent_futures_tests() -> list[ModuleType]:
    """The modules of CPython's tests of ``concurrent.futures`` that hold the futures and
    test classes used here: a package's ``util``, ``test_future``, ``test_wait`` and
    ``test_as_completed``, or the one module of older versions."""
    try:
        from test.test_concurrent_futures import (  # type: ignore[import-not-found]
            test_as_completed,
            test_future,
            test_wait,
            util,
        )
    except (ImportError, unittest.SkipTest):
        pass
    else:
        return [util, test_future, test_wait, test_as_completed]
    try:  # one module, test.test_concurrent_futures, before the split in 3.12
        from test import test_concurrent_futures  # type: ignore[import-not-found]
    except (ImportError, unittest.SkipTest):
        pytest.skip(f"{PYTHON} ships without CPython's test.test_concurrent_futures")
    module: ModuleType = test_concurrent_futures
    return [module]


def defined_in(modules: list[ModuleType], name: str) -> Any:
    """What ``name`` is in the first of ``modules`` that defines it; fails if none does (a
    CPython whose tests moved on: this file must follow them)."""
    for module in modules:
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no {name} in {[m.__name__ for m in modules]}")


def make_every_future_ours(monkeypatch: pytest.MonkeyPatch, modules: list[ModuleType]) -> None:
    """Makes the futures CPython's tests build, and their ready-made ones, TrackedFutures."""
    for module in modules:
        if hasattr(module, "Future"):
            monkeypatch.setattr(module, "Future", TrackedFuture)
    create_future = defined_in(modules, "create_future")  # builds a module's Future
    for name, state in SAMPLES.items():
        sample = create_future(**state)  # one object under each name, as in CPython
        assert type(sample) is TrackedFuture
        for module in modules:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, sample)


def cases_in(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from cases_in(test)
        else:
            yield test


def run_cases(cases: list[unittest.TestCase]) -> unittest.TestResult:
    """Runs ``cases``; fails with every failure's traceback if any failed or was skipped."""
    result = unittest.TestResult()
    unittest.TestSuite(cases).run(result)
    problems = [f"{test.id()}:\n{text}" for test, text in result.failures + result.errors]
    problems += [f"{test.id()}: skipped: {reason}" for test, reason in result.skipped]
    assert not problems, "\n\n".join(problems)
    assert result.testsRun == len(cases)
    return result


def on_our_pool(base: type[unittest.TestCase], stats: list[PoolStats]) -> type[Any]:
    """``base``, one of CPython's thread-pool test classes, with this package's pool as its
    executor: each test checks it got one, and leaves its statistics in ``stats``.

    Built here, not at module level, so that pytest does not collect it on its own.
    """

    subclass: type[Any]  # bound below, before any test runs

    def set_up(self: Any) -> None:
        super(subclass, self).setUp()  # builds self.executor from executor_type
        assert type(self.executor) is ThreadPoolExecutor, type(self.executor)

    def tear_down(self: Any) -> None:
        pool: ThreadPoolExecutor = self.executor
        super(subclass, self).tearDown()  # shuts it down and waits for its threads
        stats.append(pool.stats())

    namespace = {"executor_type": ThreadPoolExecutor, "setUp": set_up, "tearDown": tear_down}
    subclass = type(base.__name__, (base,), namespace)
    return subclass


# -- test_future ----------------------------------------------------------------------------


def test_cpython_future_suite_passes_with_tracked_future(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    modules = cpython_concurrent_futures_tests()
    make_every_future_ours(monkeypatch, modules)
    module = modules[1] if len(modules) > 1 else modules[0]  # test_future's names
    assert type(module.create_future()) is TrackedFuture  # the swaps took effect
    assert type(module.Future()) is TrackedFuture
    assert type(module.SUCCESSFUL_FUTURE) is TrackedFuture
    loaded = unittest.defaultTestLoader.loadTestsFromTestCase(defined_in(modules, "FutureTests"))
    chosen = [t for t in cases_in(loaded) if t._testMethodName not in NAMES_ITS_CLASS]
    assert len(chosen) >= 15  # the suite was found, not silently empty
    # Two tests read the callback-error log from stderr, where logging's last-resort
    # handler writes only while the root logger has no handler (pytest installs some).
    monkeypatch.setattr(logging.root, "handlers", [])
    run_cases(chosen)


# -- test_wait and test_as_completed ---------------------------------------------------------

SUITES = pytest.mark.parametrize(
    ("class_name", "least"),
    [("ThreadPoolWaitTests", 8), ("ThreadPoolAsCompletedTest", 5)],
    ids=["test_wait", "test_as_completed"],
)
SAMPLE_KINDS = pytest.mark.parametrize("ours", [True, False], ids=["tracked", "standard"])


@pytest.mark.slow  # up to 12 s where CPython's tests still sleep (3.13 and older)
@SUITES
@SAMPLE_KINDS
def test_cpython_thread_pool_suite_passes_with_our_pool(
    monkeypatch: pytest.MonkeyPatch, class_name: str, least: int, ours: bool
) -> None:
    modules = cpython_concurrent_futures_tests()
    if ours:
        make_every_future_ours(monkeypatch, modules)
    stats: list[PoolStats] = []
    tests = on_our_pool(defined_in(modules, class_name), stats)
    cases = list(cases_in(unittest.defaultTestLoader.loadTestsFromTestCase(tests)))
    assert len(cases) >= least  # the suite was found, not silently empty
    sample = defined_in(modules, "SUCCESSFUL_FUTURE")
    assert type(sample) is (TrackedFuture if ours else Future)
    run_cases(cases)
    assert len(stats) == len(cases), "every test ran on one of our pools"
    assert sum(s.submitted for s in stats) >= len(cases) // 2  # most submit tasks
    for s in stats:  # and each pool ended with every task accounted for
        assert (s.active, s.queued) == (0, 0)
        assert s.submitted == s.completed + s.failed + s.cancelled


# -- asyncio.wrap_future ---------------------------------------------------------------------


def test_cpython_asyncio_wrap_future_tests_pass_with_our_futures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        from test.test_asyncio import test_futures  # type: ignore[import-not-found]
    except (ImportError, unittest.SkipTest):
        pytest.skip(f"{PYTHON} ships without CPython's test.test_asyncio")
    pools: list[ThreadPoolExecutor] = []
    futures: list[Future[Any]] = []

    def make_pool(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(*args, **kwargs)
        pools.append(pool)
        return pool

    def make_future() -> Future[Any]:
        future: Future[Any] = TrackedFuture()
        futures.append(future)
        return future

    # The tests call concurrent.futures.ThreadPoolExecutor and .Future through their
    # module's global "concurrent"; only their view of it changes, not asyncio's.
    import concurrent.futures

    theirs = ModuleType("concurrent.futures")
    vars(theirs).update(vars(concurrent.futures))
    vars(theirs).update(ThreadPoolExecutor=make_pool, Future=make_future)
    monkeypatch.setattr(test_futures, "concurrent", SimpleNamespace(futures=theirs))

    loaded = unittest.defaultTestLoader.loadTestsFromModule(test_futures)
    cases = [t for t in cases_in(loaded) if "wrap_future" in t._testMethodName]
    assert len(cases) >= 10  # the suite was found, not silently empty
    run_cases(cases)
    assert pools, "the tests ran on our pools"
    for pool in pools:
        assert pool.stats().submitted == pool.stats().completed == 1
    assert futures, "and on our futures"
    assert all(type(f) is TrackedFuture and f.done() for f in futures)
