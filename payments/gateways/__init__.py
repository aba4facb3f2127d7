"""The processor boundary. Services call :func:`get_gateway` and code against ``base``'s types.

``get_gateway()`` reads the ``AUTHORIZE_NET_*`` settings at call time and caches one gateway per
distinct configuration, so a test's ``settings`` override takes effect on the next call while
production keeps a single instance per process. Its circuit breaker's state is shared through Redis
when one is configured (:mod:`.circuit`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

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
    Refusal,
    SettledBatch,
    TransactionDetails,
    TransactionKind,
    TransactionState,
)

if TYPE_CHECKING:
    from .authorize_net import AuthorizeNetConfig, AuthorizeNetGateway

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
    "Refusal",
    "SettledBatch",
    "TransactionDetails",
    "TransactionKind",
    "TransactionState",
    "circuit_state",
    "get_gateway",
    "processor_environment",
    "reset_gateway",
]

_lock = threading.Lock()
_cached: tuple[AuthorizeNetConfig, AuthorizeNetGateway] | None = None


def get_gateway() -> PaymentGateway:
    """The configured gateway (Authorize.Net), rebuilt when the settings it was built from change."""
    global _cached
    from .authorize_net import AuthorizeNetConfig, AuthorizeNetGateway

    config = AuthorizeNetConfig.from_settings()
    with _lock:
        if _cached is None or _cached[0] != config:
            _cached = (config, AuthorizeNetGateway(config))
        return _cached[1]


def circuit_state() -> str:
    """``closed``, ``open`` or ``half_open``: the configured gateway's circuit, for /health/detailed."""
    return get_gateway().circuit_state()


def processor_environment() -> str:
    """Which processor account a transaction id belongs to: ids are unique per environment only.

    ``AUTHORIZE_NET_ENVIRONMENT`` when set; else the kind of endpoint (``production``, ``sandbox`` or
    ``emulator``) and the API login id, e.g. ``sandbox:5KP3u95bQpv``.
    """
    from django.conf import settings

    configured = (settings.AUTHORIZE_NET_ENVIRONMENT or "").strip()
    if configured:
        return configured[:64]
    endpoint = str(settings.AUTHORIZE_NET_ENDPOINT).strip().lower()
    if endpoint == "production" or "://api.authorize.net" in endpoint or "://api2.authorize.net" in endpoint:
        kind = "production"
    elif endpoint == "sandbox" or "apitest.authorize.net" in endpoint:
        kind = "sandbox"
    else:
        kind = "emulator"
    return f"{kind}:{settings.AUTHORIZE_NET_API_LOGIN_ID}"[:64]


def reset_gateway() -> None:
    """Drop the cached gateway and close its circuit breaker, in Redis too when shared (tests, settings reloads)."""
    global _cached
    from .authorize_net import AuthorizeNetConfig
    from .authorize_net.gateway import circuit_for

    with _lock:
        cached, _cached = _cached, None
    if cached is not None:
        cached[1].circuit.reset()
    config = AuthorizeNetConfig.from_settings()
    if config.circuit_redis_url and (cached is None or cached[0] != config):
        circuit_for(config).reset()  # shared state left by another process (an earlier run) is closed too
