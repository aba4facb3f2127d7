"""The payments app's part of ``/health/detailed``: the processor's circuit breaker, registered with
core's health registry from ``PaymentsConfig.ready``."""

from __future__ import annotations


def processor_status() -> dict:
    from payments.gateways import circuit_state

    state = circuit_state()
    return {"status": "ok" if state == "closed" else "degraded", "circuit": state}
