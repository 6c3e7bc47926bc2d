"""Importing the real libraries that the drop-in tests run our pool under."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

# `make test` sets this: there every library of the `integration` extra is installed, and a
# test that skipped for want of one would hide a broken install. `make test-all` leaves it
# unset, because some libraries have no wheel yet for the newest or free-threaded Pythons.
REQUIRED = os.environ.get("THREADPOOL_PLUS_INTEGRATION") == "required"


def library(name: str) -> ModuleType:
    """Imports ``name``; skips the test when it is missing, unless the run requires it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if REQUIRED:
            raise AssertionError(
                f"{name} is missing, but THREADPOOL_PLUS_INTEGRATION=required: "
                "install the project's `integration` extra"
            ) from error
        pytest.skip(f"{name} is not installed: {error}", allow_module_level=True)
