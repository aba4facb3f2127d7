"""Events (the outbox of state changes sent to merchants)."""

from __future__ import annotations

import secrets

from django.db import models


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class Event(models.Model):
    """A merchant-visible event, written in the same transaction as the state change that causes it.

    Delivery to the merchant's endpoints happens after commit; the event id stays the same
    across every retry.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_event_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["merchant", "-created_at"], name="event_merchant_created_idx")]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"

    def as_payload(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "created": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
