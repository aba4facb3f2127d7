"""The Celery app. Workers: `celery -A config worker`; scheduler: `celery -A config beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("easypay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
