"""Subscriptions: a customer's recurring charge, billed by the daily pass in ``subscriptions.tasks``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


class Subscription(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        PAST_DUE = "past_due"
        CANCELLED = "cancelled"

    class Cycle(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        QUARTERLY = "quarterly"
        YEARLY = "yearly"

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="subscriptions")
    external_id = models.CharField(max_length=255)
    customer_id = models.CharField(max_length=255, db_index=True)
    customer_email = models.EmailField(blank=True, default="")
    customer_name = models.CharField(max_length=255, blank=True, default="")
    plan_id = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    billing_cycle = models.CharField(max_length=20, choices=Cycle.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The day billing is anchored to (Jan 31 monthly bills Feb 28/29, then Mar 31).
    start_date = models.DateField()
    next_billing_date = models.DateField(null=True, blank=True)
    current_period_start = models.DateField(null=True, blank=True)
    current_period_end = models.DateField(null=True, blank=True)
    # How to charge again, never a card number: a test token, or an Authorize.Net customer profile.
    payment_method = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict, blank=True)
    is_test = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "external_id"], name="subscription_external_id_per_merchant"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="subscription_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "next_billing_date"], name="subscription_due_idx"),
            models.Index(fields=["merchant", "-created_at"], name="subscription_merchant_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.status})"
