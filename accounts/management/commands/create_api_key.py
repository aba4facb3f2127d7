"""``create_api_key``: how operators (and the end-to-end tests) bootstrap a merchant credential."""

from __future__ import annotations

import ipaddress
import json

from django.core.management.base import BaseCommand, CommandError

from accounts import scopes
from accounts.models import APIKey
from accounts.services import api_key_create, merchant_get_or_create, merchant_limits_set


def _csv(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create an API key for a merchant (the merchant is created when it does not exist)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="merchant name (created when no merchant has it yet)")
        parser.add_argument("--name", default=None, help="key name (default: 'cli key')")
        parser.add_argument("--permissions", default="*", help="'*' or a comma-separated list of scopes")
        parser.add_argument(
            "--mode",
            choices=["test", "live"],
            default="test",
            help="test (default: test card tokens, is_test payments) or live (real cards)",
        )
        parser.add_argument("--rate-limit-per-minute", type=int, default=100, help="requests per minute (default 100)")
        parser.add_argument("--rate-limit-per-hour", type=int, default=1000, help="requests per hour (default 1000)")
        parser.add_argument("--rate-limit-per-day", type=int, default=10000, help="requests per day (default 10000)")
        for window in ("minute", "hour", "day"):
            parser.add_argument(
                f"--merchant-rate-limit-per-{window}",
                type=int,
                default=None,
                help=f"set the merchant's aggregate limit per {window} (all its keys together)",
            )
        parser.add_argument("--merchant-max-active-keys", type=int, default=None, help="set the merchant's key cap")
        parser.add_argument(
            "--ip-whitelist",
            default="",
            help="only these addresses may use the key: comma-separated IPs or CIDRs (default: any)",
        )
        parser.add_argument(
            "--ip-blacklist", default="", help="these addresses may not use the key: comma-separated IPs or CIDRs"
        )
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")

    def handle(self, *args, **options):
        merchant_name = options["merchant"].strip()
        if not merchant_name or len(merchant_name) > 255:
            raise CommandError("--merchant must be 1 to 255 characters.")
        permissions = ["*"] if options["permissions"].strip() == "*" else _csv(options["permissions"])
        unknown = [p for p in permissions if p not in scopes.VALID]
        if unknown or not permissions:
            raise CommandError(
                f"Unknown permissions: {', '.join(unknown) or '(none given)'}. Valid: *, {', '.join(scopes.SCOPES)}"
            )
        merchant_flags = (
            "merchant_rate_limit_per_minute",
            "merchant_rate_limit_per_hour",
            "merchant_rate_limit_per_day",
            "merchant_max_active_keys",
        )
        for flag in ("rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_per_day", *merchant_flags):
            if options[flag] is not None and options[flag] < 1:
                raise CommandError(f"--{flag.replace('_', '-')} must be a positive integer.")
        cidrs = {}
        for flag in ("ip_whitelist", "ip_blacklist"):
            cidrs[flag] = _csv(options[flag])
            for cidr in cidrs[flag]:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise CommandError(
                        f"--{flag.replace('_', '-')}: '{cidr}' is not a valid IP address or CIDR."
                    ) from None

        merchant, _ = merchant_get_or_create(name=merchant_name)
        merchant_limits = {
            field: options[flag]
            for flag, field in zip(
                merchant_flags,
                ("rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_per_day", "max_active_api_keys"),
                strict=True,
            )
            if options[flag] is not None
        }
        if merchant_limits:
            merchant = merchant_limits_set(merchant=merchant, **merchant_limits)
        # The operator's own tool: neither the API's ceilings nor the merchant's key cap apply.
        created = api_key_create(
            enforce_key_cap=False,
            merchant=merchant,
            name=options["name"] or "cli key",
            permissions=permissions,
            mode=options["mode"] or APIKey.Mode.TEST,
            rate_limit_per_minute=options["rate_limit_per_minute"],
            rate_limit_per_hour=options["rate_limit_per_hour"],
            rate_limit_per_day=options["rate_limit_per_day"],
            ip_whitelist=cidrs["ip_whitelist"],
            ip_blacklist=cidrs["ip_blacklist"],
        )
        result = {
            "id": str(created.api_key.pk),
            "key_id": created.api_key.key_id,
            "key_secret": created.secret,
            "key": created.key,
            "merchant_id": str(merchant.pk),
            "merchant": merchant.name,
            "permissions": created.api_key.permissions,
            "mode": created.api_key.mode,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Merchant:    {merchant.name} ({merchant.pk})")
        self.stdout.write(f"Key id:      {result['key_id']}")
        self.stdout.write(f"Key secret:  {result['key_secret']}")
        self.stdout.write(f"API key:     {result['key']}")
        self.stdout.write(f"Permissions: {', '.join(result['permissions'])}")
        self.stdout.write(self.style.WARNING("The secret is shown only this once: store it now."))
