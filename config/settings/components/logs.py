"""Logging: one JSON object per line (core/logging.py), card data and secrets masked."""

from __future__ import annotations

from .env import env

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIDFilter"},
        "redact": {"()": "core.logging.RedactingFilter"},
    },
    "formatters": {"json": {"()": "core.logging.JSONFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs whole request XML (card numbers included) on errors: never let it through.
        "authorizenet.sdk": {"level": "CRITICAL", "propagate": False, "handlers": []},
        "pyxb": {"level": "ERROR"},
    },
}
