"""Checks that only mean something on a free-threaded build run with ``PYTHON_GIL=0``
(``make test-all`` has such a leg), and the GIL heuristics' switch on every build."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest

from tests import _probe as probe
from tests.conftest import PoolFactory

# sys._is_gil_enabled() exists from 3.13 on (the typing stubs for 3.10 do not know it).
IS_GIL_ENABLED: Callable[[], bool] = getattr(sys, "_is_gil_enabled", lambda: True)
FREE_THREADED_RUN = os.environ.get("PYTHON_GIL") == "0" and hasattr(sys, "_is_gil_enabled")


@pytest.mark.skipif(not FREE_THREADED_RUN, reason="only in a PYTHON_GIL=0 run")
def test_the_gil_is_really_off() -> None:
    assert not IS_GIL_ENABLED()


def test_gil_hand_over_heuristics_run_only_where_there_is_a_gil(make_pool: PoolFactory) -> None:
    assert probe.yields_gil(make_pool(1)) is IS_GIL_ENABLED()
