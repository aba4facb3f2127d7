"""Test settings: fast hashing, quiet logs, eager Celery. DATABASE_URL / REDIS_URL pick the backends."""

from .base import *  # noqa: F403
from .base import LOGGING

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WEBHOOK_ALLOW_PRIVATE_URLS = True
# Tasks run in-process unless a test starts a real worker on purpose.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
LOGGING["root"]["level"] = "WARNING"
# Audit rows are written in the request's own flow, so tests see them at once (no background writer).
AUDIT_SYNC_WRITES = True
# Notifications: SMS kept in memory; email goes to Django's test outbox (locmem) unless a test
# points it at a real SMTP server.
SMS_BACKEND = "locmem"
