"""Waiting in tests for what another process does (a worker, a run, a server): poll until true, or fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float = 90.0, what: str = "condition", every_s: float = 0.2) -> T:
    """The first truthy value of `condition()`, asked every `every_s`; after `timeout_s`, an AssertionError naming
    `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
