"""The circuit breaker's state machine, on an injected clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from payments.gateways.base import GatewayUnavailable
from payments.gateways.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures(breaker):
    fail(breaker, 2)
    assert breaker.state == CLOSED

    fail(breaker, 1)

    assert breaker.state == OPEN
    with pytest.raises(GatewayUnavailable, match="circuit is open"):
        breaker.before_call()


def test_a_success_resets_the_consecutive_count(breaker):
    fail(breaker, 2)
    breaker.before_call()
    breaker.record_success()
    fail(breaker, 2)

    assert breaker.state == CLOSED
    assert breaker.consecutive_failures == 2


def test_half_open_after_reset_timeout_lets_one_trial_through_and_closes_on_success(breaker, clock):
    fail(breaker, 3)
    clock.advance(29.9)
    with pytest.raises(GatewayUnavailable):
        breaker.before_call()

    clock.advance(0.1)
    assert breaker.state == HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(GatewayUnavailable, match="trial call is in flight"):
        breaker.before_call()
    breaker.record_success()

    assert breaker.state == CLOSED
    breaker.before_call()


def test_a_failed_trial_reopens_for_a_full_reset_timeout(breaker, clock):
    fail(breaker, 3)
    clock.advance(30)
    breaker.before_call()

    breaker.record_failure()

    assert breaker.state == OPEN
    clock.advance(29)
    with pytest.raises(GatewayUnavailable):
        breaker.before_call()
    clock.advance(1)
    assert breaker.state == HALF_OPEN


def test_half_open_admits_exactly_one_of_many_concurrent_callers(breaker, clock):
    fail(breaker, 3)
    clock.advance(30)
    admitted, refused = [], []
    start = threading.Barrier(16)

    def call():
        start.wait()
        try:
            breaker.before_call()
            admitted.append(1)
        except GatewayUnavailable:
            refused.append(1)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert (len(admitted), len(refused)) == (1, 15)


def test_threshold_must_be_positive():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)


# --- the state shared through Redis ---------------------------------------------------------------


def _errors() -> float:
    from payments.gateways.circuit import STORAGE_ERRORS

    (total,) = (s.value for s in STORAGE_ERRORS.collect()[0].samples if s.name.endswith("_total"))
    return total


@pytest.fixture
def shared(settings, clock):
    """A factory of breakers sharing one fresh namespace in the test Redis (each one like another process's)."""
    import uuid

    from payments.gateways.circuit import SharedStorage, redis_client

    namespace = f"easypay:test:circuit:{uuid.uuid4().hex}"
    client = redis_client(settings.REDIS_URL)

    def make(**kwargs):
        options = {"failure_threshold": 3, "reset_timeout": 30, "clock": clock} | kwargs
        return CircuitBreaker(storage=SharedStorage(client, namespace=namespace), **options)

    yield make
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)


@pytest.mark.redis
def test_two_breakers_sharing_a_redis_see_each_others_opening(shared):
    web, worker = shared(), shared()
    fail(web, 2)
    fail(worker, 1)  # the third consecutive failure, seen from another process

    assert web.state == worker.state == OPEN
    assert web.shared and worker.shared
    for breaker in (web, worker):
        with pytest.raises(GatewayUnavailable, match="circuit is open after 3 consecutive failures"):
            breaker.before_call()


@pytest.mark.redis
def test_a_success_anywhere_resets_the_shared_count(shared):
    web, worker = shared(), shared()
    fail(web, 2)
    worker.before_call()
    worker.record_success()

    assert web.consecutive_failures == 0
    fail(web, 2)
    assert worker.state == CLOSED


@pytest.mark.redis
def test_half_open_admits_one_trial_across_processes_and_its_success_closes_the_circuit_for_all(shared, clock):
    web, worker = shared(), shared()
    fail(web, 3)
    clock.advance(30)
    assert worker.state == HALF_OPEN

    web.before_call()  # the trial
    with pytest.raises(GatewayUnavailable, match="trial call is in flight"):
        worker.before_call()
    web.record_success()

    assert worker.state == CLOSED
    worker.before_call()


@pytest.mark.redis
def test_a_lost_trial_expires_and_another_process_may_try(shared, clock):
    import time as real_time

    web, worker = shared(trial_timeout=0.2), shared(trial_timeout=0.2)
    fail(web, 3)
    clock.advance(30)
    web.before_call()  # the trial, never reported back (its process died)
    with pytest.raises(GatewayUnavailable, match="trial call is in flight"):
        worker.before_call()

    real_time.sleep(0.3)
    worker.before_call()


@pytest.mark.redis
def test_a_failed_trial_reopens_the_shared_circuit_for_a_full_reset_timeout(shared, clock):
    web, worker = shared(), shared()
    fail(web, 3)
    clock.advance(30)
    worker.before_call()
    worker.record_failure()

    assert web.state == OPEN
    clock.advance(29)
    with pytest.raises(GatewayUnavailable):
        web.before_call()
    clock.advance(1)
    assert web.state == HALF_OPEN


def test_a_redis_outage_does_not_fail_calls_it_falls_back_to_process_memory_and_counts(clock):
    from payments.gateways.circuit import SharedStorage, redis_client

    dead = redis_client("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens on port 1
    before = _errors()
    breaker = CircuitBreaker(
        failure_threshold=2, reset_timeout=30, clock=clock, storage=SharedStorage(dead, namespace="easypay:test:dead")
    )

    breaker.before_call()  # lets the call through (Redis reads as closed) ...
    breaker.record_success()
    assert _errors() > before  # ... and counts the error
    assert not breaker.shared  # the breaker now runs in process memory
    fail(breaker, 2)
    assert breaker.state == OPEN  # and still protects the processor
    with pytest.raises(GatewayUnavailable):
        breaker.before_call()
