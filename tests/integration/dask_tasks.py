"""Tasks the ``DaskExecutor`` tests run on Dask workers, and the gates that hold them.

They live in a module of their own so that workers unpickle them by reference. A gate is a
``distributed.Event`` named after the test: tasks wait on it on the worker, the test opens
it, and the fixture opens it at teardown so that no worker thread stays blocked (Dask
cannot interrupt a running task, so a blocked thread would starve the next tests).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, TypeVar

import distributed

__all__ = ["DaskGate", "blocked", "echo", "fail", "kwargs_of", "mark_and_return", "slow"]

T = TypeVar("T")

GATE_TIMEOUT = 30.0  # seconds a gated task waits before it gives up and raises


class DaskGate:
    """Tasks submitted as ``blocked(gate.name, value)`` wait until ``open()``."""

    def __init__(self, client: distributed.Client) -> None:
        self.name = f"gate-{uuid.uuid4().hex}"
        self._client = client

    def open(self) -> None:
        distributed.Event(self.name, client=self._client).set()  # type: ignore[no-untyped-call]

    def started(self, timeout: float = 10.0) -> bool:
        """Whether some gated task has started on a worker, within ``timeout``."""
        event = distributed.Event(f"{self.name}:started", client=self._client)  # type: ignore[no-untyped-call]
        return bool(event.wait(timeout))  # type: ignore[no-untyped-call]

    def ran(self) -> bool:
        """Whether a task submitted as ``mark_and_return(gate.name, ...)`` ran."""
        event = distributed.Event(f"{self.name}:ran", client=self._client)  # type: ignore[no-untyped-call]
        return bool(event.is_set())  # type: ignore[no-untyped-call]


def blocked(gate: str, value: T) -> T:
    """Tells the gate it started, waits until it opens, returns ``value``."""
    distributed.Event(f"{gate}:started").set()  # type: ignore[no-untyped-call]
    if not distributed.Event(gate).wait(GATE_TIMEOUT):  # type: ignore[no-untyped-call]
        raise TimeoutError(f"gate {gate} never opened")
    return value


def mark_and_return(gate: str, value: T) -> T:
    """Leaves a mark that it ran (``DaskGate.ran``)."""
    distributed.Event(f"{gate}:ran").set()  # type: ignore[no-untyped-call]
    return value


def echo(value: T) -> T:
    return value


def kwargs_of(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def fail(message: str) -> None:
    raise ValueError(message)


def slow(seconds: float) -> float:
    """Sleeps on the worker, for run-time measurements (not a gate)."""
    threading.Event().wait(seconds)
    return seconds
