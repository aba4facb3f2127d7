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
