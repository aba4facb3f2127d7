"""The adapter's configuration: credentials, endpoint, timeouts and circuit thresholds from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from authorizenet.constants import constants as sdk_constants


def resolve_endpoint(value: str) -> str:
    """``sandbox`` and ``production`` name the SDK's URLs; anything else is used as given."""
    word = value.strip().lower()
    if word == "sandbox":
        return sdk_constants.SANDBOX
    if word == "production":
        return sdk_constants.PRODUCTION
    return value.strip()


@dataclass(frozen=True)
class AuthorizeNetConfig:
    api_login_id: str
    transaction_key: str = field(repr=False)
    endpoint: str
    connect_timeout: float = 3.0
    read_timeout: float = 15.0
    duplicate_window: int = 0
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 60.0
    reconcile_lookback_days: float = 2.0
    # Where the circuit breaker's state is shared (None: in process memory), and through which Sentinels.
    circuit_redis_url: str | None = None
    circuit_redis_sentinels: tuple[tuple[str, int], ...] = ()
    circuit_redis_master: str = ""
    circuit_redis_db: int = 0

    @classmethod
    def from_settings(cls) -> AuthorizeNetConfig:
        from django.conf import settings

        redis_url = settings.AUTHORIZE_NET_CIRCUIT_REDIS_URL or None
        # Through Sentinel when the circuit shares the main Redis and that one fails over (as the cache does).
        sentinels = settings.REDIS_SENTINELS or ()
        through_sentinel = bool(redis_url and sentinels and redis_url == settings.REDIS_URL)
        return cls(
            api_login_id=settings.AUTHORIZE_NET_API_LOGIN_ID,
            transaction_key=settings.AUTHORIZE_NET_TRANSACTION_KEY,
            endpoint=resolve_endpoint(settings.AUTHORIZE_NET_ENDPOINT),
            connect_timeout=float(settings.AUTHORIZE_NET_CONNECT_TIMEOUT),
            read_timeout=float(settings.AUTHORIZE_NET_READ_TIMEOUT),
            duplicate_window=int(settings.AUTHORIZE_NET_DUPLICATE_WINDOW),
            circuit_failure_threshold=int(settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD),
            circuit_reset_seconds=float(settings.AUTHORIZE_NET_CIRCUIT_RESET_SECONDS),
            reconcile_lookback_days=float(settings.AUTHORIZE_NET_RECONCILE_LOOKBACK_DAYS),
            circuit_redis_url=redis_url,
            circuit_redis_sentinels=tuple(tuple(s) for s in sentinels) if through_sentinel else (),
            circuit_redis_master=settings.REDIS_SENTINEL_MASTER if through_sentinel else "",
            circuit_redis_db=int(settings.REDIS_DB) if through_sentinel else 0,
        )

    def circuit_scope(self) -> str:
        """What one shared breaker covers: one processor account at one endpoint."""
        return f"{self.api_login_id}@{self.endpoint}"
