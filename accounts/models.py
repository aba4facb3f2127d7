"""Merchants (the tenants), their users, and their API keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


class Merchant(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    name = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Aggregate limits of all the merchant's API keys and logins together, and the most active keys it
    # may have; empty: the settings' defaults (MERCHANT_RATE_LIMIT_PER_*, API_KEY_MAX_ACTIVE_PER_MERCHANT).
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="All of the merchant's keys together. Empty: the default."
    )
    rate_limit_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="All of the merchant's keys together. Empty: the default."
    )
    rate_limit_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="All of the merchant's keys together. Empty: the default."
    )
    max_active_api_keys = models.PositiveIntegerField(
        null=True, blank=True, help_text="The most active API keys the merchant may have. Empty: the default."
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class MerchantUser(TimeStampedModel):
    """A Django user who acts for a merchant (JWT login with username and password)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_membership")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="members")
    permissions = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant}"


class APIKey(TimeStampedModel):
    """An API credential. The secret is shown once at creation; only its keyed hash is stored."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"

    class Mode(models.TextChoices):
        TEST = "test"
        LIVE = "live"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    key_id = models.CharField(max_length=64, unique=True)
    key_secret_hash = models.CharField(max_length=128)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    permissions = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(default=100)
    rate_limit_per_hour = models.PositiveIntegerField(default=1000)
    rate_limit_per_day = models.PositiveIntegerField(default=10000)
    ip_whitelist = models.JSONField(default=list, blank=True)
    ip_blacklist = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    usage_count = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.TEST)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["active", "revoked"]), name="apikey_status_valid"),
            models.CheckConstraint(condition=Q(mode__in=["test", "live"]), name="apikey_mode_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class RevokedToken(models.Model):
    """A revoked JWT: an access token's ``jti``, or a session id (``sid``) whose every token is dead.

    Refresh tokens are blacklisted in simplejwt's ``token_blacklist`` tables; access tokens are never
    "outstanding" there, so their revocation lives here (and in the cache, which authentication reads).
    Rows are useless once ``expires_at`` has passed and ``auth_cleanup`` deletes them.
    """

    class Kind(models.TextChoices):
        ACCESS = "access"
        SESSION = "session"

    id = models.BigAutoField(primary_key=True)
    jti = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ACCESS)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "revoked token"

    def __str__(self) -> str:
        return f"{self.kind} {self.jti}"
