"""Developer defaults: SQLite, local memory cache, eager Celery, the emulator (see base.py)."""

import os
import sys
from datetime import timedelta

from .base import *  # noqa: F403
from .base import CELERY_BEAT_SCHEDULE, DEV_SECRET_KEY, LOGGING, SECRET_KEY
from .components.env import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=True)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=True)
# Without EMAIL_URL, every email sent under `make run` is kept as a file in var/sent-mail/.
if not env.str("EMAIL_URL", default=None):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(BASE_DIR / "var" / "sent-mail")

# Development bills due subscriptions every minute (production: daily at 06:00 UTC), so a subscription
# created under `make run` is billed within a minute or two. 0 restores the daily schedule.
SUBSCRIPTION_BILLING_EVERY_SECONDS = env.int("SUBSCRIPTION_BILLING_EVERY_SECONDS", default=60)
if SUBSCRIPTION_BILLING_EVERY_SECONDS > 0:
    CELERY_BEAT_SCHEDULE = {
        **CELERY_BEAT_SCHEDULE,
        "subscriptions.bill_due": {
            **CELERY_BEAT_SCHEDULE["subscriptions.bill_due"],
            "schedule": timedelta(seconds=SUBSCRIPTION_BILLING_EVERY_SECONDS),
        },
    }

# Console logs a person can read (LOG_FORMAT=json for the production format).
if env.str("LOG_FORMAT", default="text") != "json":
    LOGGING = {**LOGGING, "formatters": {**LOGGING["formatters"], "text": {"()": "core.logging.ConsoleFormatter"}}}
    LOGGING["handlers"] = {"console": {**LOGGING["handlers"]["console"], "formatter": "text"}}
    # One "succeeded in 0.0005s" line per scheduled task is noise in a terminal; failures still show.
    LOGGING["loggers"] = {**LOGGING["loggers"], "celery.app.trace": {"level": "WARNING"}}

# Said once per `make run` (which sets EASYPAY_DEV_KEY_WARNED for the processes it starts), not on
# every manage.py call.
if SECRET_KEY == DEV_SECRET_KEY and not os.environ.get("EASYPAY_DEV_KEY_WARNED"):
    print(
        "EasyPay is running with the development SECRET_KEY: never use these settings in production.",
        file=sys.stderr,
    )
