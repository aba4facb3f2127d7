"""The back office's staff groups: "support", "finance" and "admin".

- support: sees everything, may refund up to ``STAFF_SUPPORT_REFUND_LIMITS`` per payment (cumulative);
- finance: sees everything, and every money action (refund of any amount, capture, void,
  subscription pause/resume/cancel);
- admin: every permission.

Created by a data migration and by ``manage.py setup_staff_groups``; both call :func:`staff_groups_setup`,
which is idempotent and resets each group to exactly this definition.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

VIEWED_APPS = ("accounts", "payments", "webhooks", "subscriptions", "audit", "django_celery_beat", "auth")

SUPPORT_EXTRA = ("audit.view_dashboard", "audit.refund_payment")
FINANCE_EXTRA = (
    "audit.view_dashboard",
    "audit.refund_payment",
    "audit.refund_payment_unlimited",
    "audit.capture_payment",
    "audit.void_payment",
    "audit.manage_subscription",
)


def _perm(label: str) -> Permission:
    app_label, codename = label.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _view_permissions() -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"))


@transaction.atomic
def staff_groups_setup() -> dict[str, int]:
    """Create or reset the three groups; returns how many permissions each holds."""
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    views = _view_permissions()
    definitions = {
        "support": views + [_perm(p) for p in SUPPORT_EXTRA],
        "finance": views + [_perm(p) for p in FINANCE_EXTRA],
        "admin": list(Permission.objects.all()),
    }
    counts = {}
    for name, perms in definitions.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)
        counts[name] = len(set(perms))
    return counts
