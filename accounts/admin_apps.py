"""The admin app's configuration (its own module: ``accounts.apps`` may declare one config only)."""

from django.contrib.admin.apps import AdminConfig


class EasyPayAdminConfig(AdminConfig):
    """``django.contrib.admin`` with EasyPay's site: staff lockout and second factors (staff_auth)."""

    default_site = "accounts.staff_auth.EasyPayAdminSite"
