from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import metrics, openapi  # noqa: F401  (register the scheduler gauges, the schema extensions)
        from .beat import sync_beat_schedule

        def _sync(sender, **kwargs):
            if sender.name == "django_celery_beat":
                sync_beat_schedule()

        post_migrate.connect(_sync, dispatch_uid="core.sync_beat_schedule", weak=False)
