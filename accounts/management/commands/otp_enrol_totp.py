"""``otp_enrol_totp USERNAME``: give a staff user a TOTP second factor (accounts/staff_auth.py).

Prints the provisioning URI (``otpauth://...``) and a QR code of it, once: scan it with an
authenticator app. The admin never shows the device's key again. ``--replace`` replaces the user's
TOTP devices (a lost phone); ``--remove`` removes them.
"""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Enrol a TOTP device for a staff user; shows its provisioning URI and QR code once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="the device's name")
        parser.add_argument("--replace", action="store_true", help="replace the user's TOTP devices")
        parser.add_argument("--remove", action="store_true", help="remove the user's TOTP devices")
        parser.add_argument("--no-qr", action="store_true", help="print the URI only")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        if not user.is_staff:
            raise CommandError(f"{user.username} is not staff: second factors are for the back office.")
        with transaction.atomic():
            existing = TOTPDevice.objects.select_for_update().filter(user=user)
            if options["remove"]:
                count = len(existing)
                existing.delete()
                self.stdout.write(f"Removed {count} TOTP device(s) of {user.username}.")
                return
            if existing.exists() and not options["replace"]:
                raise CommandError(f"{user.username} already has a TOTP device; --replace replaces it.")
            existing.delete()
            device = TOTPDevice.objects.create(user=user, name=options["name"][:64], confirmed=True)
        uri = device.config_url
        self.stdout.write(f"TOTP device enrolled for {user.username}. Scan this now; it is not shown again:")
        self.stdout.write(uri)
        if not options["no_qr"]:
            import qrcode

            qr = qrcode.QRCode(border=1)
            qr.add_data(uri)
            out = io.StringIO()
            qr.print_ascii(out=out, invert=True)
            self.stdout.write(out.getvalue())
