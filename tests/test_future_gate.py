"""Which future the pool hands out: ``LeanFuture`` on verified Pythons, else the standard one.

The choice is made once, at import, so the fallback is seen in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from threadpool_plus import _future
from threadpool_plus._future import (
    STANDARD_FUTURE_VARIABLE,
    VERIFIED_FREE_THREADED_MINORS,
    VERIFIED_MINORS,
    LeanFuture,
    TrackedFuture,
    _choose_lean,
)

ROOT = Path(__file__).resolve().parent.parent
THIS_MINOR = (sys.version_info[0], sys.version_info[1])
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
VERIFIED_HERE = THIS_MINOR in (VERIFIED_FREE_THREADED_MINORS if FREE_THREADED else VERIFIED_MINORS)


def matching() -> bool:
    return True


def drifted() -> bool:
    return False


def never_asked() -> bool:
    raise AssertionError("the drift check ran although the choice was already made")


def run_script(script: str, standard_future: str | None) -> subprocess.CompletedProcess[str]:
    """Runs ``script`` in a new interpreter that imports the package from this checkout,
    with THREADPOOL_PLUS_STANDARD_FUTURE set to ``standard_future`` (unset if ``None``)."""
    env = dict(os.environ)
    env.pop(STANDARD_FUTURE_VARIABLE, None)
    if standard_future is not None:
        env[STANDARD_FUTURE_VARIABLE] = standard_future
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- the rule ---------------------------------------------------------------------------------


def test_every_minor_the_project_supports_is_verified() -> None:
    # requires-python is >=3.10 and CI runs up to 3.15; a minor leaves this set only when
    # tests/test_future_cpython.py fails there.
    assert {(3, minor) for minor in range(10, 16)} == VERIFIED_MINORS
    assert all(version in VERIFIED_MINORS for version in VERIFIED_FREE_THREADED_MINORS)


@pytest.mark.parametrize("version", sorted(VERIFIED_MINORS))
def test_a_verified_minor_gets_the_lean_future_while_the_check_passes(
    version: tuple[int, int],
) -> None:
    assert _choose_lean(version, {}, free_threaded=False, matches=matching) is True
    assert _choose_lean(version, {}, free_threaded=False, matches=drifted) is False


@pytest.mark.parametrize("version", [(3, 9), (3, 16), (3, 99), (4, 0), (2, 7)])
def test_a_minor_outside_the_allow_list_gets_the_standard_future(
    version: tuple[int, int],
) -> None:
    assert version not in VERIFIED_MINORS
    for free_threaded in (False, True):
        chosen = _choose_lean(version, {}, free_threaded=free_threaded, matches=never_asked)
        assert chosen is False


def test_a_free_threaded_build_needs_its_own_verification() -> None:
    for version in sorted(VERIFIED_MINORS):
        chosen = _choose_lean(version, {}, free_threaded=True, matches=matching)
        assert chosen is (version in VERIFIED_FREE_THREADED_MINORS)


@pytest.mark.parametrize(
    ("value", "lean"), [("", True), ("0", True), ("1", False), ("yes", False)]
)
def test_the_environment_variable_forces_the_standard_future(value: str, lean: bool) -> None:
    checks = matching if lean else never_asked
    environ = {STANDARD_FUTURE_VARIABLE: value}
    assert _choose_lean((3, 11), environ, free_threaded=False, matches=checks) is lean


# -- this interpreter -------------------------------------------------------------------------


def test_this_python_gets_the_lean_future_if_its_minor_is_verified() -> None:
    if os.environ.get(STANDARD_FUTURE_VARIABLE, "") not in ("", "0"):
        pytest.skip(f"{STANDARD_FUTURE_VARIABLE} is set: the fallback was asked for")
    assert _future.LEAN is VERIFIED_HERE
    assert (TrackedFuture is LeanFuture) is VERIFIED_HERE
    if VERIFIED_HERE:
        assert _future._matches_the_standard_future()


@pytest.mark.slow
@pytest.mark.parametrize("standard_future", [None, "0"])
def test_a_fresh_interpreter_chooses_as_the_gate_says(standard_future: str | None) -> None:
    done = run_script(
        """
        from threadpool_plus import ThreadPoolExecutor, _future
        with ThreadPoolExecutor(1) as pool:
            print(_future.LEAN, type(pool.submit(int, "7")).__name__)
        """,
        standard_future,
    )
    assert (done.returncode, done.stderr) == (0, "")
    expected = "True LeanFuture" if VERIFIED_HERE else "False ObservedFuture"
    assert done.stdout.split("\n") == [expected, ""]


@pytest.mark.slow
def test_the_forced_fallback_hands_out_observed_futures_that_work() -> None:
    done = run_script(
        """
        import concurrent.futures as cf, gc
        from threadpool_plus import ThreadPoolExecutor, _future

        assert not _future.LEAN
        assert _future.TrackedFuture is _future.ObservedFuture

        def explode():
            raise ValueError("boom")

        with ThreadPoolExecutor(2, name="fallback") as pool:
            ok = pool.submit(pow, 2, 10)
            failed = pool.submit(explode)
            lost = pool.submit(explode)
            print(type(ok).__name__, ok.result(timeout=10))
            print(repr(failed.exception(timeout=10)))
            done, _ = cf.wait([lost], timeout=10)
            assert done == {lost}
            del lost, done  # never observed: reported when collected
            gc.collect()
            record = pool.recent_failures()[-1]
            print(record.task, repr(record.exception))
            stats = pool.stats()
            print(stats.submitted, stats.completed, stats.failed)
        """,
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        "ObservedFuture 1024",
        "ValueError('boom')",
        "explode ValueError('boom')",
        "3 1 2",
        "",
    ]
    # The one failure nobody looked at is logged once, with its traceback.
    assert done.stderr.count("never retrieved") == 1, done.stderr
    assert "ValueError: boom" in done.stderr
