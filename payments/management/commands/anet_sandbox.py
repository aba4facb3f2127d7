"""``python manage.py anet_sandbox``: run the local Authorize.Net sandbox emulator (CONTRACT section 7).

It accepts the merchant credentials EasyPay's settings hold (AUTHORIZE_NET_API_LOGIN_ID,
AUTHORIZE_NET_TRANSACTION_KEY) and signs webhooks with AUTHORIZE_NET_SIGNATURE_KEY, so the web
process and the emulator agree without further configuration.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from payments.gateways.sandbox.cli import add_arguments, run


class Command(BaseCommand):
    help = "Run the local Authorize.Net sandbox emulator (XML API at /xml/v1/request.api)."

    def add_arguments(self, parser) -> None:
        add_arguments(parser)

    def handle(self, *args, **options) -> None:
        run(
            options,
            {
                "api_login_id": settings.AUTHORIZE_NET_API_LOGIN_ID,
                "transaction_key": settings.AUTHORIZE_NET_TRANSACTION_KEY,
                "signature_key": settings.AUTHORIZE_NET_SIGNATURE_KEY,
            },
        )
