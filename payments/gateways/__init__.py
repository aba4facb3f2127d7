"""The processor boundary. Services call :func:`get_gateway` and code against ``base``'s types.

``get_gateway()`` reads the ``AUTHORIZE_NET_*`` settings at call time and caches one gateway per
distinct configuration, so a test's ``settings`` override takes effect on the next call while
production keeps a single instance (and a single circuit breaker) per process.
"""

from __future__ import annotations

import threading

from .base import (
    ChargeRequest,
    GatewayCommunicationError,
    GatewayConfigurationError,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    InvalidPaymentSource,
    Outcome,
    PaymentGateway,
    ProfileResult,
    SettledBatch,
    TransactionDetails,
)
from .circuit import circuit_state

__all__ = [
    "ChargeRequest",
    "GatewayCommunicationError",
    "GatewayConfigurationError",
    "GatewayError",
    "GatewayResult",
    "GatewayUnavailable",
    "InvalidPaymentSource",
    "Outcome",
    "PaymentGateway",
    "ProfileResult",
    "SettledBatch",
    "TransactionDetails",
    "circuit_state",
    "get_gateway",
    "reset_gateway",
]

_lock = threading.Lock()
_cached: tuple[object, PaymentGateway] | None = None


def get_gateway() -> PaymentGateway:
    """The configured gateway (Authorize.Net), rebuilt when the settings it was built from change."""
    global _cached
    from .authorize_net import AuthorizeNetConfig, AuthorizeNetGateway

    config = AuthorizeNetConfig.from_settings()
    with _lock:
        if _cached is None or _cached[0] != config:
            _cached = (config, AuthorizeNetGateway(config))
        return _cached[1]


def reset_gateway() -> None:
    """Drop the cached gateway and with it the circuit breaker's state (tests, settings reloads)."""
    global _cached
    with _lock:
        _cached = None
