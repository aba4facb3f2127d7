"""Fixed-window rate limits (minute, hour, day) per credential and per merchant, counted atomically.

A request is counted against its credential's windows and, with ``merchant_bucket``, against the
merchant's aggregate windows (all of its keys and logins together) in the same check: the same Lua
script round trip (or the same in-process pass), so it passes only when both have room, and then
counts against both. The headers report the tighter of the two.

With Redis (``settings.RATE_LIMIT_REDIS_URL``, by default ``REDIS_URL``) one Lua script checks every
window and increments them all only when none is exhausted, so concurrent requests never pass more
than the limit and a rejected request does not eat the longer windows' quota. Without Redis the local
cache is used (``cache.add`` + ``cache.incr``, undone with ``decr`` when rejected).

The N-th request of a window passes; the N+1-th is rejected. A Redis outage fails open: the request
passes, a warning is logged (at most every few seconds) and ``easypay_ratelimit_fail_open_total``
counts it; a short breaker skips Redis for ``RATE_LIMIT_BREAKER_SECONDS`` so an outage does not add
a socket timeout to every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter

from core.exceptions import RateLimited

logger = logging.getLogger("easypay.ratelimit")

WINDOWS: tuple[tuple[str, int], ...] = (("minute", 60), ("hour", 3600), ("day", 86400))

FAIL_OPEN = Counter(
    "easypay_ratelimit_fail_open_total",
    "Requests let through because the rate-limit store (Redis) was unavailable.",
    ["limiter"],
)

# KEYS: counters; ARGV[1..n]: limits, ARGV[n+1..2n]: TTLs. Returns {blocked, count_1, ..., count_n}.
_HIT_LUA = """
local n = #KEYS
local counts = {}
local blocked = 0
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = c
  if c >= tonumber(ARGV[i]) then blocked = 1 end
end
if blocked == 0 then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[n + i])) end
  end
end
table.insert(counts, 1, blocked)
return counts
"""

# The same check, and when the request is allowed it also counts one use of the API key (its usage
# statistics) in the same round trip: KEYS[n+1] is the key's use counter, KEYS[n+2] its flush marker.
# The first use after the marker expired takes the counted uses out of the counter and returns them
# for the caller to add to the database row (at most once per ARGV[2n+1] seconds per key).
# ARGV[2n+2]: the counter's TTL. KEYS[n+3] is the credential's version (bumped by every change of the
# key, see ``credential_version_bump``), returned so that a process may trust the copy of the key it
# keeps in memory without another round trip. Returns {blocked, count_1, ..., count_n, uses_to_flush,
# version}.
_HIT_AND_COUNT_USE_LUA = """
local n = #KEYS - 3
local counts = {}
local blocked = 0
local version = tonumber(redis.call('GET', KEYS[n + 3]) or '0')
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = c
  if c >= tonumber(ARGV[i]) then blocked = 1 end
end
local flush = 0
if blocked == 0 then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[n + i])) end
  end
  if redis.call('INCR', KEYS[n + 1]) == 1 then redis.call('EXPIRE', KEYS[n + 1], tonumber(ARGV[2 * n + 2])) end
  if redis.call('SET', KEYS[n + 2], '1', 'NX', 'EX', tonumber(ARGV[2 * n + 1])) then
    flush = tonumber(redis.call('GET', KEYS[n + 1]) or '0')
    if flush > 0 then redis.call('DECRBY', KEYS[n + 1], flush) end
  end
end
table.insert(counts, 1, blocked)
table.insert(counts, flush)
table.insert(counts, version)
return counts
"""
USE_FLUSH_SECONDS = 60
USE_COUNTER_TTL_SECONDS = 86400

# Gives back one unit of each counter that still exists (never creates a key without a TTL).
_REFUND_LUA = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECR', KEYS[i]) end
end
return 1
"""


KEY_SCOPE = "credential"
MERCHANT_SCOPE = "merchant"


@dataclass(frozen=True)
class WindowState:
    name: str
    seconds: int
    limit: int
    count: int  # requests counted in this window, this one included when allowed
    reset: int  # seconds until the window starts over
    scope: str = KEY_SCOPE  # the credential's own window, or the merchant's aggregate

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exhausted(self) -> bool:
        return self.count >= self.limit


@dataclass(frozen=True)
class Decision:
    allowed: bool
    windows: tuple[WindowState, ...]
    keys: tuple[str, ...]
    backend: str  # "redis" or "cache"
    # With count_use: the key's uses to add to its row now (0: not this request's turn); None when the
    # use was not counted here (no Redis), so the caller counts it itself.
    uses_to_flush: int | None = None
    # With count_use on Redis: the credential's current version (see ``credential_version``).
    version: int | None = None

    @property
    def tightest(self) -> WindowState:
        return min(self.windows, key=lambda w: (w.remaining, w.seconds))

    @property
    def retry_after(self) -> int:
        blocked = [w.reset for w in self.windows if w.exhausted]
        return max(1, max(blocked) if blocked else 1)

    def headers(self) -> dict[str, str]:
        tight = self.tightest
        headers = {
            "X-RateLimit-Limit": str(tight.limit),
            "X-RateLimit-Remaining": str(tight.remaining),
            "X-RateLimit-Reset": str(tight.reset),
        }
        # Per window length, the tighter of the credential's and the merchant's window.
        per_name: dict[str, WindowState] = {}
        for window in self.windows:
            known = per_name.get(window.name)
            if known is None or window.remaining < known.remaining:
                per_name[window.name] = window
        for window in per_name.values():
            suffix = window.name.capitalize()
            headers[f"X-RateLimit-Limit-{suffix}"] = str(window.limit)
            headers[f"X-RateLimit-Remaining-{suffix}"] = str(window.remaining)
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class _RedisState:
    lock = threading.Lock()
    clients: dict[str, redis.Redis] = {}
    scripts: dict[tuple[int, str], Any] = {}
    down_until = 0.0
    last_warning = 0.0


def _redis_url() -> str | None:
    return settings.RATE_LIMIT_REDIS_URL


def _client(url: str) -> redis.Redis:
    with _RedisState.lock:
        client = _RedisState.clients.get(url)
        if client is None:
            timeout = settings.RATE_LIMIT_REDIS_TIMEOUT
            sentinels = settings.REDIS_SENTINELS
            if sentinels and url == settings.REDIS_URL:
                # Through Sentinel: a failover moves the master; the scripts are loaded again on the new
                # one by redis-py's Script (it retries once after NOSCRIPT).
                from redis.sentinel import Sentinel

                client = Sentinel(
                    sentinels, socket_timeout=timeout, sentinel_kwargs={"socket_timeout": timeout}
                ).master_for(
                    settings.REDIS_SENTINEL_MASTER,
                    db=settings.REDIS_DB,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                )
            else:
                client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            _RedisState.clients[url] = client
        return client


def _script(client: redis.Redis, lua: str):
    """The registered script, made once per client (``register_script`` hashes the source each time)."""
    key = (id(client), lua)
    script = _RedisState.scripts.get(key)
    if script is None:
        script = _RedisState.scripts[key] = client.register_script(lua)
    return script


def _fail_open(limiter: str, exc: Exception | None) -> None:
    FAIL_OPEN.labels(limiter=limiter).inc()
    now = time.monotonic()
    if now - _RedisState.last_warning >= 10:
        _RedisState.last_warning = now
        logger.warning(
            "rate limit store unavailable, failing open",
            extra={"limiter": limiter, "error": type(exc).__name__ if exc else "breaker_open"},
        )


def _layout(bucket: str, limits: dict[str, int], now: float) -> list[tuple[str, int, int, str, int]]:
    """-> [(name, seconds, limit, key, reset)] for the windows that have a positive limit."""
    out = []
    for name, seconds in WINDOWS:
        limit = limits.get(name)
        if not limit or limit < 1:
            continue
        index = int(now // seconds)
        reset = max(1, math.ceil((index + 1) * seconds - now))
        # The {hash tag} keeps one credential's counters in one Redis Cluster slot. (With a merchant
        # bucket the script also touches the merchant's slot: EasyPay's Redis is one primary, with
        # Sentinel for failover, not a Cluster.)
        out.append((name, seconds, int(limit), f"rl:{{{bucket}}}:{name}:{index}", reset))
    return out


def merchant_bucket(merchant_id) -> str:
    """The merchant's aggregate windows in the rate-limit store."""
    return f"merchant:{merchant_id}"


def use_keys(bucket: str) -> tuple[str, str]:
    """(use counter, flush marker) of a credential in the rate-limit Redis (same cluster slot as its windows)."""
    return f"easypay:rl:{{{bucket}}}:uses", f"easypay:rl:{{{bucket}}}:uses:flush"


def version_key(bucket: str) -> str:
    """The credential's version counter in the rate-limit Redis (same cluster slot as its windows).

    It has no TTL: a version that went back to an earlier value could make an old copy look current.
    (A Redis that loses its data resets every version to 0; copies are also dropped after a minute.)"""
    return f"easypay:rl:{{{bucket}}}:version"


def credential_version(bucket: str) -> int | None:
    """The credential's current version, or ``None`` when it cannot be known (no Redis, Redis down)."""
    url = _redis_url()
    if not url or not settings.RATE_LIMIT_ENABLED or time.monotonic() < _RedisState.down_until:
        return None
    try:
        return int(_client(url).get(version_key(bucket)) or 0)
    except redis.RedisError:
        return None


def credential_version_bump(bucket: str) -> None:
    """Tell every process that copies of this credential are out of date."""
    url = _redis_url()
    if not url:
        return
    try:
        _client(url).incr(version_key(bucket))
    except redis.RedisError as exc:
        logger.warning("credential version bump failed", extra={"bucket": bucket, "error": type(exc).__name__})


def _hit_redis(
    client: redis.Redis, layout, now: float, *, use_bucket: str | None = None
) -> tuple[bool, list[int], list[str], tuple[int, int] | None]:
    """-> (allowed, counts, keys, (uses_to_flush, version) when counting a use)."""
    keys = [f"easypay:{key}" for _, _, _, key, _ in layout]
    ttls = [seconds + 1 for _, seconds, _, _, _ in layout]
    limits = [limit for _, _, limit, _, _ in layout]
    if use_bucket is None:
        result = _script(client, _HIT_LUA)(keys=keys, args=[*limits, *ttls])
        blocked, counts = bool(int(result[0])), [int(c) for c in result[1:]]
        return not blocked, counts, keys, None
    result = _script(client, _HIT_AND_COUNT_USE_LUA)(
        keys=[*keys, *use_keys(use_bucket), version_key(use_bucket)],
        args=[*limits, *ttls, USE_FLUSH_SECONDS, USE_COUNTER_TTL_SECONDS],
    )
    blocked, counts = bool(int(result[0])), [int(c) for c in result[1:-2]]
    return not blocked, counts, keys, (int(result[-2]), int(result[-1]))


def _hit_cache(layout) -> tuple[bool, list[int], list[str]]:
    keys, counts = [], []
    allowed = True
    for _, seconds, limit, key, _ in layout:
        cache.add(key, 0, seconds + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 0, seconds + 1)
            count = cache.incr(key)
        keys.append(key)
        counts.append(count)
        if count > limit:
            allowed = False
    if not allowed:
        for key in keys:
            try:
                cache.decr(key)
            except ValueError:
                pass
        counts = [c - 1 for c in counts]
    return allowed, counts, keys


def hit(
    bucket: str,
    limits: dict[str, int],
    *,
    limiter: str = "credential",
    count_use: bool = False,
    merchant: str | None = None,
    merchant_limits: dict[str, int] | None = None,
) -> Decision | None:
    """Count one request against ``bucket``'s windows, and ``merchant``'s (a ``merchant_bucket``) with
    ``merchant_limits``, all or none. ``None`` when there is nothing to enforce or the store is down
    (fail open). ``count_use``: also count a use of the credential in the same Redis round trip (see
    ``Decision.uses_to_flush``)."""
    now = time.time()
    layout = _layout(bucket, limits, now)
    scopes = [KEY_SCOPE] * len(layout)
    if merchant and merchant_limits:
        merchant_layout = _layout(merchant, merchant_limits, now)
        layout += merchant_layout
        scopes += [MERCHANT_SCOPE] * len(merchant_layout)
    if not layout:
        return None
    url = _redis_url()
    if url:
        if time.monotonic() < _RedisState.down_until:
            _fail_open(limiter, None)
            return None
        try:
            allowed, counts, keys, use = _hit_redis(_client(url), layout, now, use_bucket=bucket if count_use else None)
        except redis.RedisError as exc:
            _RedisState.down_until = time.monotonic() + settings.RATE_LIMIT_BREAKER_SECONDS
            _fail_open(limiter, exc)
            return None
        uses, version = use if use is not None else (None, None)
        backend = "redis"
    else:
        allowed, counts, keys = _hit_cache(layout)
        uses = version = None
        backend = "cache"
    windows = tuple(
        WindowState(name=name, seconds=seconds, limit=limit, count=count, reset=reset, scope=scope)
        for (name, seconds, limit, _, reset), count, scope in zip(layout, counts, scopes, strict=True)
    )
    return Decision(
        allowed=allowed, windows=windows, keys=tuple(keys), backend=backend, uses_to_flush=uses, version=version
    )


def refund(decision: Decision | None) -> None:
    """Give back the unit ``decision`` counted (e.g. a successful login does not count as a failure)."""
    if decision is None or not decision.allowed:
        return
    if decision.backend == "redis":
        url = _redis_url()
        try:
            if url:
                _script(_client(url), _REFUND_LUA)(keys=list(decision.keys))
        except redis.RedisError:
            pass  # a lost refund only makes the limiter slightly stricter
        return
    for key in decision.keys:
        try:
            cache.decr(key)
        except ValueError:
            pass


def reset_state() -> None:
    """Forget cached clients and the breaker (tests, settings changes)."""
    with _RedisState.lock:
        _RedisState.clients.clear()
        _RedisState.scripts.clear()
        _RedisState.down_until = 0.0
        _RedisState.last_warning = 0.0


def enforce(
    request,
    *,
    bucket: str,
    limits: dict[str, int],
    limiter: str = "credential",
    count_use: bool = False,
    merchant: str | None = None,
    merchant_limits: dict[str, int] | None = None,
) -> Decision | None:
    """Count the request; remember the headers for the response; raise 429 over the limit."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    decision = hit(
        bucket, limits, limiter=limiter, count_use=count_use, merchant=merchant, merchant_limits=merchant_limits
    )
    if decision is None:
        return None
    apply(request, decision)
    return decision


def apply(request, decision: Decision) -> None:
    """Put ``decision``'s headers on the response; raise 429 when it was over a limit."""
    headers = decision.headers()
    django_request = getattr(request, "_request", request)
    django_request.easypay_ratelimit_headers = headers
    if not decision.allowed:
        window = max((w for w in decision.windows if w.exhausted), key=lambda w: w.reset)
        whose = "this merchant's API keys together" if window.scope == MERCHANT_SCOPE else "this credential"
        raise RateLimited(
            f"Rate limit exceeded: {window.limit} requests per {window.name} for {whose}. "
            f"Retry after {decision.retry_after}s.",
            details={
                "retry_after": decision.retry_after,
                "window": window.name,
                "limit": window.limit,
                "scope": window.scope,
            },
            headers=headers,
        )
