"""Validation of the pool's configuration, in the standard library's voice.

Every check raises ``TypeError`` for a value of the wrong type and ``ValueError`` for a
value out of range, naming the parameter, so a bad configuration fails at construction
(or at ``resize()``/``map()``) and never half-way through a workload.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

if TYPE_CHECKING:
    from ._failures import TaskFailure

__all__ = [
    "Settings",
    "check_count",
    "check_initializer",
    "check_limits",
    "check_name",
    "check_order",
    "check_timeout",
    "default_max_workers",
]


class Settings(NamedTuple):
    """The constructor arguments every executor validates alike, validated (by
    ``_front.check_settings``); its core reads them once, at construction."""

    capacity: int  # max_queue_size
    submit_timeout: float | None
    overflow: str
    failure_history: int
    on_task_error: Callable[[TaskFailure], object] | None
    histogram_buckets: tuple[float, ...]
    task_timeout: float | None


def _type_name(value: object) -> str:
    return type(value).__name__


def check_count(name: str, value: object, *, minimum: int) -> int:
    """Returns ``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    if value < minimum:
        if minimum == 1:
            raise ValueError(f"{name} must be greater than 0")
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_timeout(name: str, value: object, *, allow_zero: bool) -> float | None:
    """Returns a timeout in seconds; ``None`` (and infinity) mean "no limit"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, not {_type_name(value)}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be None or {bound}, got {value!r}")
    return None if math.isinf(seconds) else seconds


def default_max_workers() -> int:
    """The running Python's ``concurrent.futures.ThreadPoolExecutor`` default."""
    # Python 3.13 counts the CPUs this process may use; earlier versions all CPUs.
    cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return min(32, (cpu_count() or 1) + 4)


def check_limits(min_workers: object, max_workers: object) -> tuple[int, int]:
    """Validates a ``(min_workers, max_workers)`` pair; ``max_workers=None`` is the default."""
    low = check_count("min_workers", min_workers, minimum=0)
    if isinstance(max_workers, float) and max_workers.is_integer():
        max_workers = int(max_workers)  # the standard library takes 4.0 for 4
    if max_workers is None:
        # The default never contradicts an explicit min_workers.
        return low, max(default_max_workers(), low)
    high = check_count("max_workers", max_workers, minimum=1)
    check_order(low, high)
    return low, high


def check_order(low: int, high: int) -> None:
    """Raises ``ValueError`` unless ``min_workers <= max_workers``."""
    if low > high:
        raise ValueError(f"min_workers ({low}) must not be greater than max_workers ({high})")


def check_initializer(
    initializer: object, initargs: object
) -> tuple[Callable[..., object] | None, tuple[Any, ...]]:
    """Validates ``initializer`` and ``initargs`` as the standard library would use them."""
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    try:
        args = tuple(cast("Iterable[Any]", initargs))  # a TypeError if it is not one
    except TypeError:
        # The standard library would only fail later, in every new thread.
        raise TypeError(f"initargs must be an iterable, not {_type_name(initargs)}") from None
    return initializer, args


def check_name(name: str, value: object, *, allow_empty: bool) -> str:
    """Returns ``value`` if it is a ``str`` (non-empty unless ``allow_empty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return value
