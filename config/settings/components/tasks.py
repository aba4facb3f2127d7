"""Celery: broker, task defaults, queue routing and the beat schedule."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from .database import REDIS_DB, REDIS_SENTINEL_MASTER, REDIS_SENTINELS, REDIS_URL
from .env import env

_SENTINEL_URL = ";".join(f"sentinel://{host}:{port}/{REDIS_DB}" for host, port in REDIS_SENTINELS)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=None) or _SENTINEL_URL or REDIS_URL
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or _SENTINEL_URL or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_BROKER_URL is None:
    # Tasks run eagerly, but Celery still opens a producer to check serializers: give it kombu's
    # in-process transport instead of an empty URL (which kombu reads as amqp://localhost, with a
    # "No hostname was supplied" warning on every task). Nothing is ever sent through it.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_RESULT_EXPIRES = 3600
# How long a task taken by a worker that died stays invisible before Redis hands it out again.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"socket_timeout": 1, "socket_connect_timeout": 1}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"master_name": REDIS_SENTINEL_MASTER}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# Outbound webhook deliveries wait on merchants' servers (up to WEBHOOK_TIMEOUT_SECONDS): in production
# they may go to a queue of their own served by a threads-pool worker (docs/operations/processes.md).
# Unset: Celery's default queue, served by every worker.
WEBHOOKS_DELIVERY_QUEUE = env.str("WEBHOOKS_DELIVERY_QUEUE", default=None) or None
CELERY_TASK_ROUTES = (
    {"webhooks.tasks.delivery_attempt": {"queue": WEBHOOKS_DELIVERY_QUEUE}} if WEBHOOKS_DELIVERY_QUEUE else {}
)

# django-celery-beat's DatabaseScheduler behind a PostgreSQL advisory lock: a second beat started by
# mistake waits and schedules nothing while the first one lives; it beats the scheduler heartbeat.
CELERY_BEAT_SCHEDULER = "core.beat:SingleBeatScheduler"
# The scheduler (celery beat or run_schedule) records a heartbeat this often; /health/detailed and the
# easypay_scheduler_stale metric report it stale when it is older than SCHEDULER_HEARTBEAT_STALE_SECONDS.
SCHEDULER_HEARTBEAT_SECONDS = env.float("SCHEDULER_HEARTBEAT_SECONDS", default=15.0)
SCHEDULER_HEARTBEAT_STALE_SECONDS = env.int("SCHEDULER_HEARTBEAT_STALE_SECONDS", default=120)
# Subscriptions are billed daily at 06:00 UTC; a positive value bills every N seconds instead
# (the development settings use 60, so `make run` bills a due subscription within a minute or two).
SUBSCRIPTION_BILLING_EVERY_SECONDS = env.int("SUBSCRIPTION_BILLING_EVERY_SECONDS", default=0)
# How often the scheduler looks for deliveries and inbound events whose retry is due. With a broker a retry
# is also enqueued with its countdown; without one (`make run`) this sweep alone sends it, so 20 s keeps
# the first retry (due 30 s after the failure) within a minute.
WEBHOOK_RETRY_POLL_SECONDS = env.int("WEBHOOK_RETRY_POLL_SECONDS", default=20)
# The beat schedule is code; `core.beat.sync_beat_schedule` loads it into django-celery-beat
# (after migrate) so staff can see and pause each entry in the admin.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "accounts.cleanup": {"task": "accounts.tasks.auth_cleanup", "schedule": crontab(hour=3, minute=0)},
    "payments.purge_idempotency_keys": {
        "task": "payments.tasks.idempotency_purge",
        "schedule": crontab(minute=15),
    },
    "payments.reconcile_pending": {"task": "payments.tasks.reconcile_pending", "schedule": timedelta(minutes=5)},
    "payments.sync_settlements": {"task": "payments.tasks.settlement_sync", "schedule": timedelta(minutes=30)},
    "payments.ledger_reconcile": {"task": "payments.tasks.ledger_reconcile", "schedule": crontab(hour=5, minute=30)},
    "subscriptions.bill_due": {
        "task": "subscriptions.tasks.bill_due_subscriptions",
        "schedule": (
            timedelta(seconds=SUBSCRIPTION_BILLING_EVERY_SECONDS)
            if SUBSCRIPTION_BILLING_EVERY_SECONDS > 0
            else crontab(hour=6, minute=0)
        ),
    },
    "audit.purge_old_rows": {"task": "audit.tasks.audit_purge", "schedule": crontab(hour=4, minute=0)},
    "webhooks.retry_due_deliveries": {
        "task": "webhooks.tasks.deliveries_retry_due",
        "schedule": timedelta(seconds=WEBHOOK_RETRY_POLL_SECONDS),
    },
    "webhooks.retry_due_inbound": {
        "task": "webhooks.tasks.inbound_events_retry_due",
        "schedule": timedelta(seconds=WEBHOOK_RETRY_POLL_SECONDS),
    },
    "webhooks.purge_invalid_inbound": {
        "task": "webhooks.tasks.inbound_events_purge",
        "schedule": crontab(hour=4, minute=30),
    },
    "notifications.retry_due": {
        "task": "notifications.tasks.notifications_send_due",
        "schedule": timedelta(minutes=1),
    },
    "notifications.daily": {
        "task": "notifications.tasks.notifications_daily",
        "schedule": crontab(hour=7, minute=0),
    },
    "notifications.webhook_failures": {
        "task": "notifications.tasks.webhook_failure_alerts",
        "schedule": crontab(minute=40),
    },
}
