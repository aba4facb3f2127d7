"""Cache-aside that never keeps a copy older than a committed write: leases.

A plain "read the row, then put it in the cache" can store a stale copy: a reader loads the row, a
write commits and invalidates, then the reader writes the old row into the cache, where it stays
for the whole TTL. So a miss takes a *lease* (a random token next to the entry, in the same round
trip as the read), the copy is stored only if the lease is still there, and an invalidation deletes
the entry and the lease together. A write that commits between a reader's read and its fill always
wins (memcache "leases", Nishtala et al., NSDI 2013). A miss that finds another reader's lease
simply does not fill. The TTL is only a backstop.

With Redis the read-or-lease and the fill are one Lua script each; with the in-process cache
(``make run``, tests) a lock gives the same guarantees within the one process it serves. Values are
JSON. A cache outage degrades to reading the database (``leased_read`` answers a miss without a
lease) and never fails the caller.

    value, lease = leased_read(key)
    if value is None:
        value = load_from_database()
        leased_fill(key, value, lease=lease, ttl=60)
    ...
    leased_invalidate(key)  # after the write, and again once it commits
"""

from __future__ import annotations

import json
import logging
import random
import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("easypay.cache")

LEASE_MILLISECONDS = 5000

# KEYS: entry, lease. ARGV: token, lease ms. -> {1, entry} | {0, token} (lease taken) | {0, false}
_READ_OR_LEASE = """
local entry = redis.call('GET', KEYS[1])
if entry then return {1, entry} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, ARGV[1]} end
return {0, false}
"""
# KEYS: entry, lease. ARGV: token, entry, ttl seconds. -> 1 stored, 0 the lease was gone (invalidated).
_FILL_IF_LEASED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

_local_lock = threading.Lock()
_scripts: dict[int, tuple[Any, Any]] = {}


def _lease_key(key: str) -> str:
    return f"{key}:lease"


def _stored(*keys: str) -> list[str]:
    """The names Redis holds them under (the cache's KEY_PREFIX and version applied)."""
    return [cache.make_key(key) for key in keys]


def _redis():
    """The default cache's Redis client and its two scripts, or ``None`` when the cache is not Redis."""
    if "redis" not in str(settings.CACHES["default"]["BACKEND"]).lower():
        return None
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    scripts = _scripts.get(id(client))
    if scripts is None:
        scripts = _scripts[id(client)] = (
            client.register_script(_READ_OR_LEASE),
            client.register_script(_FILL_IF_LEASED),
        )
    return client, scripts


def leased_read(key: str) -> tuple[Any, str | None]:
    """``(value, None)`` on a hit; ``(None, lease)`` on a miss, where ``lease`` (maybe ``None``: another
    reader holds it, or the cache is down) is what :func:`leased_fill` needs to store the value."""
    token = f"{random.getrandbits(64):016x}"  # tells leases apart: nothing to guess, no syscall
    backend = _redis()
    if backend is None:
        with _local_lock:
            entry = cache.get(key)
            if entry is not None:
                return json.loads(entry), None
            return None, token if cache.add(_lease_key(key), token, LEASE_MILLISECONDS / 1000) else None
    read_or_lease = backend[1][0]
    try:
        found, value = read_or_lease(keys=_stored(key, _lease_key(key)), args=[token, LEASE_MILLISECONDS])
    except Exception:
        logger.warning("cache read failed", extra={"cache_key": key})
        return None, None
    if int(found):
        return json.loads(value), None
    return None, token if value else None


def leased_fill(key: str, value: Any, *, lease: str | None, ttl: int) -> bool:
    """Store ``value`` read from the database after :func:`leased_read` gave ``lease``; refused
    (``False``) when the key was invalidated meanwhile, so a stale read is never cached."""
    if lease is None:
        return False
    entry = json.dumps(value, separators=(",", ":"))
    backend = _redis()
    if backend is None:
        with _local_lock:
            if cache.get(_lease_key(key)) != lease:
                return False
            cache.set(key, entry, ttl)
            cache.delete(_lease_key(key))
            return True
    fill_if_leased = backend[1][1]
    try:
        return bool(int(fill_if_leased(keys=_stored(key, _lease_key(key)), args=[lease, entry, ttl])))
    except Exception:
        logger.warning("cache fill failed", extra={"cache_key": key})
        return False


def leased_invalidate(key: str) -> None:
    """Drop the entry and any reader's lease (so a read that started before this write cannot fill)."""
    try:
        backend = _redis()
        if backend is None:
            with _local_lock:
                cache.delete_many([key, _lease_key(key)])
            return
        backend[0].delete(*_stored(key, _lease_key(key)))
    except Exception:  # a cache outage must never fail a committed write
        logger.warning("cache invalidation failed", extra={"cache_key": key})
