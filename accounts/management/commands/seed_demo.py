"""``seed_demo``: a demo merchant, a staff login and one API key for `make run` (the key is printed once)."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import APIKey
from accounts.services import api_key_create, merchant_get_or_create

DEMO_MERCHANT = "Demo Merchant"


class Command(BaseCommand):
    help = "Create the demo merchant and API key (and an admin/admin staff user) when they do not exist."

    def handle(self, *args, **options):
        merchant, _ = merchant_get_or_create(name=DEMO_MERCHANT, email="demo@easypay.local")
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@easypay.local", "admin")
            self.stdout.write("Admin login (development only): admin / admin at /admin/")
        if APIKey.objects.filter(merchant=merchant, name="demo key").exists():
            self.stdout.write(
                f"Demo merchant '{DEMO_MERCHANT}' already has its demo key (its secret was shown once). "
                f"Make another: python manage.py create_api_key --merchant '{DEMO_MERCHANT}'"
            )
            return
        created = api_key_create(merchant=merchant, name="demo key", permissions=["*"])
        self.stdout.write(self.style.SUCCESS(f"Demo API key (shown once): {created.key}"))
        self.stdout.write(
            f"  curl -H 'X-API-Key: {created.key}' http://127.0.0.1:{os.environ.get('PORT', '8000')}/api/v1/auth/me"
        )
