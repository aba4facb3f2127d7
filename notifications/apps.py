from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # The customer's notices come from the outbox's events: the outbox calls this app back, it
        # never imports it (webhooks stays below notifications).
        from webhooks.services import event_listener_register

        from .services import notifications_for_event

        event_listener_register(notifications_for_event)
