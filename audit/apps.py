from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from core.adminlib import register_admin_recorder

        from .staff import record_admin_action

        register_admin_recorder(record_admin_action)
