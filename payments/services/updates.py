"""``payment_update``: the fields a merchant may change after the fact (no money involved)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.errors import ValidationFailed
from payments.models import Payment
from payments.services.common import (
    after_commit,
    lock_payment,
    log_write,
)

UPDATABLE_FIELDS = ("description", "metadata", "customer_email", "customer_name")


def payment_update(*, payment: Payment, **fields: Any) -> Payment:
    """Change only description, metadata, customer_email and customer_name."""
    unknown = sorted(set(fields) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ValidationFailed(details={name: ["This field cannot be changed."] for name in unknown})
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        changed = {name: value for name, value in fields.items() if getattr(locked, name) != value}
        for name, value in changed.items():
            setattr(locked, name, value)
        if changed:
            locked.save()
            log_write(locked, "update", request={"fields": sorted(changed)})
        after_commit(locked)
    return locked
