"""Developer defaults: SQLite, local memory cache, eager Celery, the emulator (see base.py)."""

import warnings

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, SECRET_KEY
from .env import BASE_DIR, env_bool, env_str

DEBUG = env_bool("DEBUG", True)
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", True)
# Without EMAIL_URL, every email sent under `make run` is kept as a file in var/sent-mail/.
if not env_str("EMAIL_URL"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(BASE_DIR / "var" / "sent-mail")

if SECRET_KEY == DEV_SECRET_KEY:
    warnings.warn(
        "EasyPay is running with the development SECRET_KEY: never use these settings in production.",
        stacklevel=1,
    )
