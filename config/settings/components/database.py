"""The database (with optional streaming replicas), Redis and the cache."""

from __future__ import annotations

from urllib.parse import urlparse

from .env import BASE_DIR, env

DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": {**env.db_url_config(DATABASE_URL), "CONN_MAX_AGE": 0}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("DB_CONNECT_TIMEOUT", default=3)
    # The planner's cost of a random page read: PostgreSQL's default (4) is a spinning disk's. With it, and
    # statistics older than the rows (a burst of inserts, autovacuum behind or off), a list page
    # (merchant_id = ? ORDER BY created_at DESC, id DESC LIMIT 21) became a bitmap scan of every row
    # of the merchant plus a sort: 24 ms at 14,500 payments instead of 0.16 ms down the index that
    # holds that order. 1.1 is the usual value for SSDs and data in memory.
    DATABASES["default"]["OPTIONS"]["options"] = f"-c random_page_cost={env.float('DB_RANDOM_PAGE_COST', default=1.1)}"
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Streaming replicas (comma-separated URLs): aliases "replica1", "replica2", ... used only by reads that
# ask for one explicitly (core/replicas.py); the router sends every write and every unmarked read to
# "default". Unset: one database, exactly as before.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
for _index, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _replica = {**DATABASES["default"], **env.db_url_config(_url), "CONN_HEALTH_CHECKS": False}
    _replica["ENGINE"] = DATABASES["default"]["ENGINE"]
    _replica["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    _replica["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_index}"] = _replica
DATABASE_ROUTERS = ["core.replicas.PrimaryReplicaRouter"]
# A replica whose replay is further behind the primary than this is skipped (seconds).
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
# How long one replica's replay position is reused before it is asked again (seconds).
DATABASE_REPLICA_LSN_CACHE_SECONDS = env.float("DATABASE_REPLICA_LSN_CACHE_SECONDS", default=0.05)

# --- Cache and Redis ----------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default=None) or None
# Redis with automatic failover: "host:port,host:port,..." of the Sentinels watching the master named
# REDIS_SENTINEL_MASTER. Then the cache, the rate limiter and the broker find the master through them
# (REDIS_URL's database number is kept; its host is not used).
REDIS_SENTINELS = [
    (_entry.rsplit(":", 1)[0], int(_entry.rsplit(":", 1)[1])) for _entry in env.list("REDIS_SENTINELS", default=[])
]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default=None) or "easypay"
_redis_path = urlparse(REDIS_URL).path.strip("/") if REDIS_URL else ""
REDIS_DB = int(_redis_path) if _redis_path.isdigit() else 0
if REDIS_SENTINELS and not REDIS_URL:
    REDIS_URL = f"redis://{REDIS_SENTINEL_MASTER}/0"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                # A Redis outage degrades caching instead of failing requests.
                "IGNORE_EXCEPTIONS": True,
            },
            "KEY_PREFIX": "easypay",
        }
    }
    if REDIS_SENTINELS:
        # Only the master (a one-entry list): claims, leases and key versions must never be read from a
        # replica that has not caught up.
        CACHES["default"]["LOCATION"] = [f"redis://{REDIS_SENTINEL_MASTER}/{REDIS_DB}?is_master=1"]
        CACHES["default"]["OPTIONS"].update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": REDIS_SENTINELS,
                "SENTINEL_KWARGS": {"socket_timeout": 1, "socket_connect_timeout": 1},
            }
        )
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "easypay",
            "KEY_PREFIX": "easypay",
        }
    }
