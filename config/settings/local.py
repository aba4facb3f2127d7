"""Developer defaults: SQLite, local memory cache, eager Celery, the emulator (see base.py)."""

import warnings

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, SECRET_KEY
from .env import env_bool

DEBUG = env_bool("DEBUG", True)
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", True)

if SECRET_KEY == DEV_SECRET_KEY:
    warnings.warn(
        "EasyPay is running with the development SECRET_KEY: never use these settings in production.",
        stacklevel=1,
    )
