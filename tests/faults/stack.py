"""The fault tests' and the soak's profile of the local stack (``scripts/stack.py``, which the bench
uses too): production settings plus two knobs (``tests.faults.settings``), short timeouts and sweeps
(``DEFAULT_ENV``), databases named ``easypay_faults_*``, a merchant with an API key of very high limits
and a webhook endpoint pointing at the receiver.

    with Stack(tag="demo") as stack:
        r = stack.api("POST", "/api/v1/payments", {...})
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from scripts import stack as base
from scripts.loopback import Reply, http_request, wait_until
from scripts.servers import PrivatePostgres, PrivateRedis
from scripts.stack import log

__all__ = [
    "DEFAULT_ENV",
    "PrivatePostgres",
    "PrivateRedis",
    "Reply",
    "Stack",
    "StackOptions",
    "http_request",
    "log",
    "wait_until",
]

SHARED_PG_ADMIN = os.environ.get("FAULTS_PG_URL") or base.LOCAL_PG_ADMIN
SHARED_REDIS = os.environ.get("FAULTS_REDIS_HOST_PORT") or base.LOCAL_REDIS

DEFAULT_ENV = {
    "AUTHORIZE_NET_READ_TIMEOUT": "5",
    "AUTHORIZE_NET_CONNECT_TIMEOUT": "2",
    "AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD": "3",
    "AUTHORIZE_NET_CIRCUIT_RESET_SECONDS": "5",
    "PAYMENTS_RECONCILE_AFTER_SECONDS": "2",
    "PAYMENTS_RECONCILE_GRACE_SECONDS": "60",
    "PAYMENT_CACHE_SECONDS": "5",
    # A claim left by a killed request is taken over by a retry after this long (> the 2+5 s timeouts).
    "IDEMPOTENCY_STALE_SECONDS": "12",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "2,4,8",
    "FAULTS_SWEEP_SECONDS": "5",
    "FAULTS_VISIBILITY_TIMEOUT": "20",
    "LOG_LEVEL": "INFO",
}


@dataclass
class StackOptions:
    tag: str = "t"
    private_postgres: bool = False
    private_redis: bool = True
    redis_db: int = 12  # only with private_redis=False
    gunicorn_threads: int = 8
    celery_concurrency: int = 2
    beat: bool = True
    webhook_endpoint: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def stack_options(self) -> base.StackOptions:
        return base.StackOptions(
            tag=self.tag,
            name="stack",
            db_prefix="easypay_faults",
            settings_module="tests.faults.settings",
            pg_admin_url=SHARED_PG_ADMIN,
            private_postgres=self.private_postgres,
            private_redis=self.private_redis,
            redis_url=f"redis://{SHARED_REDIS}/{self.redis_db}",
            gunicorn_threads=self.gunicorn_threads,
            celery_concurrency=self.celery_concurrency,
            beat=self.beat,
            env={**DEFAULT_ENV, **self.env},
        )


class Stack(base.Stack):
    def __init__(self, options: StackOptions | None = None, **kwargs: Any) -> None:
        self.faults = options or StackOptions(**kwargs)
        super().__init__(self.faults.stack_options())

    def seed(self) -> None:
        limit = 100_000_000
        created = self.create_api_key(f"faults-{self.faults.tag}", per_minute=limit, per_hour=limit, per_day=limit)
        self.api_key, self.merchant_id = created["key"], created["merchant_id"]
        if self.faults.webhook_endpoint:
            reply = self.api(
                "POST",
                "/api/v1/webhooks",
                {"url": f"http://127.0.0.1:{self.receiver_port}/hook", "events": ["*"], "description": "faults"},
            )
            if reply.status != 201:
                raise RuntimeError(f"webhook endpoint creation failed: {reply.status} {reply.body}")
            self.endpoint = reply.data
            self.receiver_config(secret=self.endpoint["secret"])
        self.log(f"seeded merchant {self.merchant_id}")
