"""ASGI entry point: `gunicorn -k uvicorn.workers.UvicornWorker config.asgi:application` or any ASGI server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()
