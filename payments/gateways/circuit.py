"""A small thread-safe circuit breaker guarding calls to the processor (in process memory).

closed --(failure_threshold consecutive failures)--> open --(reset_timeout elapsed)--> half_open
half_open --(the one trial call succeeds)--> closed;  half_open --(it fails)--> open again.

While open every call fails fast with :class:`GatewayUnavailable` (nothing is sent, so nothing can
be charged). Half-open lets exactly one trial call through; concurrent callers keep failing fast
until it reports back. Failures are transport failures only (connection errors, timeouts, HTTP
5xx, garbled replies): a decline is a healthy processor saying no. The clock is injectable so
tests can move time instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .base import GatewayUnavailable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "authorize_net",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        """The state as a caller would see it now (an expired open circuit reads half_open)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
                return HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def before_call(self) -> None:
        """Let the call through, or raise GatewayUnavailable without sending anything."""
        with self._lock:
            if self._state == CLOSED:
                return
            if self._state == OPEN:
                remaining = self.reset_timeout - (self._clock() - self._opened_at)
                if remaining > 0:
                    raise GatewayUnavailable(
                        f"{self.name} circuit is open after {self._failures} consecutive failures; "
                        f"next trial in {remaining:.1f}s"
                    )
                self._state = HALF_OPEN
            if self._trial_in_flight:
                raise GatewayUnavailable(f"{self.name} circuit is half-open and its trial call is in flight")
            self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def reset(self) -> None:
        self.record_success()
