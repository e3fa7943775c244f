"""Riding through store outages: every store call retries a lost connection or a locked database, with backoff.

The attempts are driven by `tenacity` (a kept library: exponential backoff with jitter and its stop rules are the
well-trodden ones, as in Celery's and Optuna's retries); this module decides what is retried and what happens between
attempts, which is the part that is ours:
- Only the outermost store call retries. A method called inside another's transaction lets the error go up, and the
  outer call starts over, whole, on a fresh connection (the failed transaction was rolled back or never committed).
- Only transient errors retry, as the backend judges them (`_transient`: a dropped or refused connection, the
  server shutting down, SQLite's "database is locked"); a bad statement or a refused status change is raised at once.
- After a transient error the thread's connection is dropped, so the next attempt reconnects.
- The budget (`patience_s`) is the opener's: pages wait seconds, workers and runs many minutes. Once it is spent the
  call raises `StoreUnavailable` (the URL in its message redacted).
- A write that may have committed before its answer was lost is made safe to repeat by the method itself: metric
  batches are numbered (`add_metrics`), and a status change or a claim repeated on a retry recognises its own work
  (`_retry_attempt`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from bert_lab.runs.store import PATIENCE_S, StoreUnavailable, WaitCallback, masked, redacted

T = TypeVar("T")
FIRST_WAIT_S = 0.05  # the first wait after a failed attempt; it doubles (with jitter) up to MAX_WAIT_S
MAX_WAIT_S = 2.0  # the longest wait between attempts: a store that comes back is used again within this
JITTER_S = 0.25  # up to this much is added to each wait, so that many processes do not retry in step


class Retries:
    """What a store needs to ride through outages (mixed into `SQLStore`): `_retrying`, and `reachable_since`. A
    backend says which errors are transient (`_transient`) and how to drop this thread's connection."""

    url: str

    def __init__(self, *, patience_s: float = PATIENCE_S, on_wait: WaitCallback | None = None) -> None:
        self.patience_s, self.on_wait = patience_s, on_wait
        self._calls = threading.local()  # this thread's store call: depth (0 or 1) and attempt number
        self._failing = False  # a transient error since the last call that got through
        self._reachable_since = 0.0

    @property
    def reachable_since(self) -> float:
        """When this handle last got through to the store after failing to (time.time(); 0.0 if it never failed)."""
        return self._reachable_since

    # --- what a backend supplies ------------------------------------------------------------------------------------
    def _transient(self, exc: BaseException) -> bool:
        """Whether `exc` may go away by itself (a lost connection, a lock): worth another attempt."""
        return False

    def _drop_connection(self) -> None:
        """Forget this thread's connection after a transient error (the next attempt opens a new one)."""

    # --- retrying ---------------------------------------------------------------------------------------------------
    @property
    def _retry_attempt(self) -> int:
        """Which attempt of this thread's outermost store call is running (1 the first; 0 outside any call)."""
        return getattr(self._calls, "attempt", 0)

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, retried on transient errors for `patience_s` seconds; inside another store call, just `call()`."""
        if getattr(self._calls, "depth", 0):
            return call()
        started = time.monotonic()
        retrying = Retrying(
            retry=retry_if_exception(self._transient),
            stop=stop_before_delay(self.patience_s),
            wait=wait_exponential_jitter(multiplier=FIRST_WAIT_S, max=MAX_WAIT_S, jitter=JITTER_S),
            before_sleep=lambda state: self._waiting(time.monotonic() - started, state),
            reraise=True,
        )
        self._calls.attempt = 0
        try:
            result = retrying(self._attempt, call)
        except Exception as exc:
            if not self._transient(exc):
                raise
            waited = time.monotonic() - started
            text = f"the run store at {redacted(self.url)} is unreachable (retried for {waited:.0f} s): {exc}"
            raise StoreUnavailable(masked(text, self.url)) from exc
        finally:
            self._calls.attempt = 0
        if self._failing:
            self._failing, self._reachable_since = False, time.time()
        return result

    def _attempt(self, call: Callable[[], T]) -> T:
        self._calls.attempt += 1
        self._calls.depth = 1
        try:
            return call()
        except BaseException as exc:
            if self._transient(exc):
                self._failing = True
                self._drop_connection()
            raise
        finally:
            self._calls.depth = 0

    def _waiting(self, waited_s: float, state: RetryCallState) -> None:
        if self.on_wait is not None and state.outcome is not None:
            self.on_wait(waited_s, state.outcome.exception())


def retried(method: Callable[..., T]) -> Callable[..., T]:
    """A store method that retries as the module says. One-shot iterators among its arguments are read into tuples
    first: a retry must see the same points, ids and names as the first attempt."""

    @functools.wraps(method)
    def call(self: Retries, *args: Any, **kwargs: Any) -> T:
        args = tuple(tuple(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {k: tuple(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        return self._retrying(functools.partial(method, self, *args, **kwargs))

    return call
