"""CPython's own tests of ``concurrent.futures.Future``, run against ``TrackedFuture``.

They build their futures through a module-level ``Future`` name, which is swapped for
ours here. Skipped where the interpreter ships without its ``test`` package (pyenv's
3.10-3.12 here); the Debian 3.14 and 3.15 of ``make test-all`` and pyenv's 3.13 have it.
"""

from __future__ import annotations

import logging
import unittest
from collections.abc import Iterator
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from types import ModuleType

import pytest

from threadpool_plus._future import TrackedFuture

# These match the text "<Future at 0x..." in repr(future), or in a message that embeds
# it; ours says "<TrackedFuture at 0x...", as the repr of every subclass does.
NAMES_ITS_CLASS = {"test_repr", "test_multiple_set_result", "test_multiple_set_exception"}


# The futures CPython's util module builds at import, rebuilt as TrackedFutures.
SAMPLES: dict[str, dict[str, object]] = {
    "PENDING_FUTURE": {"state": PENDING},
    "RUNNING_FUTURE": {"state": RUNNING},
    "CANCELLED_FUTURE": {"state": CANCELLED},
    "CANCELLED_AND_NOTIFIED_FUTURE": {"state": CANCELLED_AND_NOTIFIED},
    "EXCEPTION_FUTURE": {"state": FINISHED, "exception": OSError()},
    "SUCCESSFUL_FUTURE": {"state": FINISHED, "result": 42},
}


def cpython_future_tests(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """CPython's test_future module, with every future it makes a TrackedFuture."""
    try:
        from test.test_concurrent_futures import (  # type: ignore[import-not-found]
            test_future,
            util,
        )
    except ImportError:
        pytest.skip("this Python ships without CPython's test package")
    monkeypatch.setattr(util, "Future", TrackedFuture)
    monkeypatch.setattr(test_future, "Future", TrackedFuture)
    for name, state in SAMPLES.items():
        monkeypatch.setattr(test_future, name, util.create_future(**state))
    module: ModuleType = test_future
    return module


def cases_in(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from cases_in(test)
        else:
            yield test


def test_cpython_future_suite_passes_with_tracked_future(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = cpython_future_tests(monkeypatch)
    assert type(module.create_future()) is TrackedFuture  # the swaps took effect
    assert type(module.Future()) is TrackedFuture
    assert type(module.SUCCESSFUL_FUTURE) is TrackedFuture
    loaded = unittest.defaultTestLoader.loadTestsFromModule(module)
    chosen = [t for t in cases_in(loaded) if t._testMethodName not in NAMES_ITS_CLASS]
    assert len(chosen) >= 15  # the suite was found, not silently empty
    # Two tests read the callback-error log from stderr, where logging's last-resort
    # handler writes only while the root logger has no handler (pytest installs some).
    monkeypatch.setattr(logging.root, "handlers", [])
    result = unittest.TestResult()
    unittest.TestSuite(chosen).run(result)
    problems = [f"{test.id()}:\n{text}" for test, text in result.failures + result.errors]
    assert not problems, "\n\n".join(problems)
    assert result.testsRun == len(chosen)
