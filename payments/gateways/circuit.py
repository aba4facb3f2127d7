"""The circuit breaker guarding calls to the processor, its state in pybreaker's storage.

closed --(failure_threshold consecutive failures)--> open --(reset_timeout elapsed)--> half_open
half_open --(the one trial call succeeds)--> closed;  half_open --(it fails)--> open again.

While open every call fails fast with :class:`GatewayUnavailable` (nothing is sent, so nothing can
be charged). Half-open lets exactly one trial call through; concurrent callers keep failing fast
until it reports back. Failures are transport failures only (connection errors, timeouts, HTTP
5xx, garbled replies): a decline is a healthy processor saying no. The clock is injectable so
tests can move time instead of sleeping.

Where the state lives: with a Redis configured (``AUTHORIZE_NET_CIRCUIT_REDIS_URL``, by default
``REDIS_URL``) in :class:`pybreaker.CircuitRedisStorage`, so every worker and web instance sees one
breaker: one process's failures open it for all, and half-open admits one trial call in the whole
deployment (a ``SET NX`` claim that expires if its process dies). Without Redis (``make run``) in
:class:`pybreaker.CircuitMemoryStorage`, one breaker per process. A Redis that does not answer never
fails a payment: the breaker carries on in process memory for :data:`FALLBACK_SECONDS`, and
``easypay_circuit_storage_errors_total`` counts each error.

Why the transitions are not :meth:`pybreaker.CircuitBreaker.call`: it holds the breaker's lock for
the whole guarded call, so a process would send one request to the processor at a time; its
half-open state lets every process (and every caller queued on that lock) try; it reads the wall
clock only; and it wants the call wrapped, where the gateway needs to say which failures count
(an HTTP 4xx is the processor answering). So the state machine below (the same as before pybreaker)
runs on pybreaker's storage interface, and the storage is what is shared.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pybreaker
import redis
from prometheus_client import Counter

from .base import GatewayUnavailable

logger = logging.getLogger(__name__)

# The states as EasyPay names them (health, logs); pybreaker's storage writes "half-open".
CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
_STORED = {CLOSED: pybreaker.STATE_CLOSED, OPEN: pybreaker.STATE_OPEN, HALF_OPEN: pybreaker.STATE_HALF_OPEN}
_NAMED = {stored: ours for ours, stored in _STORED.items()}

# After a Redis error the breaker's state is kept in process memory for this long before Redis is tried again.
FALLBACK_SECONDS = 5.0

STORAGE_ERRORS = Counter(
    "easypay_circuit_storage_errors_total",
    "Errors reaching the Redis that holds the processor circuit breaker's state (the breaker then runs in "
    "process memory for a few seconds; payments go on).",
)


class _ErrorTap:
    """Stands in for :class:`pybreaker.CircuitRedisStorage`'s logger, which it calls on every RedisError
    it swallows: the error is noted (the breaker falls back) instead of logged with a traceback per call."""

    def __init__(self, storage: SharedStorage) -> None:
        self._storage = storage

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._storage.failed = True


class SharedStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, plus the half-open trial claim and a sub-second opening time.

    pybreaker stores ``opened_at`` as whole seconds, which would let a 0.5 s reset timeout elapse
    at once; here it is the clock's float. ``failed`` is set when a Redis call failed (see :class:`_ErrorTap`).
    """

    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        self.failed = False
        self.logger = _ErrorTap(self)  # type: ignore[assignment]  # pybreaker calls only .exception() on it
        super().__init__(pybreaker.STATE_CLOSED, client, namespace=namespace)

    def _initialize_redis_state(self, state: str) -> None:
        try:
            super()._initialize_redis_state(state)
        except redis.RedisError:
            self.failed = True

    @property
    def opened_at(self) -> datetime | None:
        try:
            value = self._redis.get(self._namespace("opened_at"))
        except redis.RedisError:
            self.failed = True
            return None
        return None if value is None else datetime.fromtimestamp(float(value), UTC)

    @opened_at.setter
    def opened_at(self, when: datetime) -> None:
        try:
            self._redis.set(self._namespace("opened_at"), repr(when.timestamp()))
        except redis.RedisError:
            self.failed = True

    def state_and_counter(self) -> tuple[str, int]:
        """The state and the failure count in one round trip (a success's check that nothing needs writing)."""
        try:
            state, counter = self._redis.mget(self._namespace("state"), self._namespace("fail_counter"))
        except redis.RedisError:
            self.failed = True
            return pybreaker.STATE_CLOSED, 0
        if isinstance(state, bytes):  # the client answers bytes (no decode_responses)
            state = state.decode()
        return (state or pybreaker.STATE_CLOSED), int(counter or 0)

    def claim_trial(self, ttl: float) -> bool:
        try:
            return bool(self._redis.set(self._namespace("trial"), 1, nx=True, px=max(1, int(ttl * 1000))))
        except redis.RedisError:
            self.failed = True
            return True  # Redis is gone: the process-memory fallback takes over from the next call

    def release_trial(self) -> None:
        try:
            self._redis.delete(self._namespace("trial"))
        except redis.RedisError:
            self.failed = True


class _MemoryStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-process storage, plus the half-open trial claim."""

    def __init__(self) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._trial_in_flight = False

    def state_and_counter(self) -> tuple[str, int]:
        return self.state, self.counter

    def claim_trial(self, ttl: float) -> bool:
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def release_trial(self) -> None:
        self._trial_in_flight = False


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        name: str = "authorize_net",
        storage: SharedStorage | None = None,
        trial_timeout: float = 60.0,
    ) -> None:
        """``storage``: shared state (Redis); None keeps it in this object. ``trial_timeout``: how long
        a half-open trial call may take before another caller may try (its process may have died)."""
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.trial_timeout = trial_timeout
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._shared = storage
        self._memory = _MemoryStorage()
        self._fallback_until = 0.0
        # Per thread: the last before_call saw the circuit closed with no failure counted, so a success
        # has nothing to write (one Redis round trip per processor call on the common path, not two).
        self._clean = threading.local()

    @property
    def shared(self) -> bool:
        """Whether the state is in Redis (and not, just now, in the process-memory fallback)."""
        return self._shared is not None and time.monotonic() >= self._fallback_until

    @property
    def state(self) -> str:
        """The state as a caller would see it now (an expired open circuit reads half_open)."""
        with self._lock:
            store = self._store()
            state = _NAMED.get(store.state, CLOSED)
            if state == OPEN and self._remaining(store) <= 0:
                state = HALF_OPEN
            self._settle(store)
            return state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            store = self._store()
            failures = store.counter
            self._settle(store)
            return failures

    def before_call(self) -> None:
        """Let the call through, or raise GatewayUnavailable without sending anything."""
        with self._lock:
            store = self._store()
            self._clean.seen = False
            try:
                stored_state, failures = store.state_and_counter()
                state = _NAMED.get(stored_state, CLOSED)
                if state == CLOSED:
                    self._clean.seen = failures == 0
                    return
                if state == OPEN:
                    remaining = self._remaining(store)
                    if remaining > 0:
                        raise GatewayUnavailable(
                            f"{self.name} circuit is open after {store.counter} consecutive failures; "
                            f"next trial in {remaining:.1f}s"
                        )
                    store.state = _STORED[HALF_OPEN]
                if not store.claim_trial(self.trial_timeout):
                    raise GatewayUnavailable(f"{self.name} circuit is half-open and its trial call is in flight")
            finally:
                self._settle(store)

    def record_success(self) -> None:
        if getattr(self._clean, "seen", False):
            # Closed with nothing counted when this call went out: nothing to reset. A failure another
            # process counted meanwhile stays counted (the breaker is shared; "consecutive" is across all).
            self._clean.seen = False
            return
        with self._lock:
            store = self._store()
            state, failures = store.state_and_counter()
            if failures:
                store.reset_counter()
            if state != pybreaker.STATE_CLOSED:
                store.state = pybreaker.STATE_CLOSED
                store.release_trial()
            self._settle(store)

    def record_failure(self) -> None:
        self._clean.seen = False
        with self._lock:
            store = self._store()
            store.increment_counter()
            if store.state == pybreaker.STATE_HALF_OPEN or store.counter >= self.failure_threshold:
                store.opened_at = datetime.fromtimestamp(self._clock(), UTC)
                store.state = pybreaker.STATE_OPEN
            store.release_trial()
            self._settle(store)

    def reset(self) -> None:
        """Closed, no failures counted, no trial in flight (in the shared state too)."""
        with self._lock:
            for store in (self._memory, self._shared):
                if store is not None:
                    store.reset_counter()
                    store.state = pybreaker.STATE_CLOSED
                    store.release_trial()
            if self._shared is not None:
                self._settle(self._shared)

    # internals ---------------------------------------------------------------------------------------

    def _store(self) -> SharedStorage | _MemoryStorage:
        return self._shared if self._shared is not None and self.shared else self._memory

    def _remaining(self, store: SharedStorage | _MemoryStorage) -> float:
        opened_at = store.opened_at
        if opened_at is None:
            return 0.0
        return self.reset_timeout - (self._clock() - opened_at.timestamp())

    def _settle(self, store: SharedStorage | _MemoryStorage) -> None:
        """After using the shared state: if Redis failed, count it and use process memory for a while."""
        if not isinstance(store, SharedStorage) or not store.failed:
            return
        store.failed = False
        STORAGE_ERRORS.inc()
        self._fallback_until = time.monotonic() + FALLBACK_SECONDS
        logger.warning(
            "%s circuit: its Redis did not answer; the breaker runs in process memory for %.0f s",
            self.name,
            FALLBACK_SECONDS,
        )


_clients_lock = threading.Lock()
_clients: dict[tuple[Any, ...], redis.Redis] = {}


def redis_client(
    url: str, *, sentinels: tuple[tuple[str, int], ...] = (), master: str = "", db: int = 0, timeout: float = 0.5
) -> redis.Redis:
    """One client (connection pool) per Redis, through Sentinel when ``sentinels`` are given."""
    key = (url, sentinels, master, db, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if sentinels:
                from redis.sentinel import Sentinel

                client = Sentinel(
                    list(sentinels), socket_timeout=timeout, sentinel_kwargs={"socket_timeout": timeout}
                ).master_for(master, db=db, socket_timeout=timeout, socket_connect_timeout=timeout)
            else:
                client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            _clients[key] = client
        return client
