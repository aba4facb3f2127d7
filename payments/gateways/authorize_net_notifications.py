"""Authorize.Net's webhook notifications read into the processor boundary's terms.

A notification's body is ``{"notificationId", "eventType", "eventDate", "webhookId", "payload"}``
where ``payload`` names its entity (``entityName``: ``transaction``, ``customerProfile`` ...), the
entity's ``id`` and, for a transaction, the ``invoiceNumber`` / ``merchantReferenceId`` the charge
was sent with. Only this module knows that shape.
"""

from __future__ import annotations

from typing import Any

from .base import TransactionNotice


def transaction_notice(body: dict[str, Any]) -> TransactionNotice:
    """Which transaction a parsed notification body concerns (a payload without entityName is one)."""
    payload = body.get("payload")
    inner: dict[str, Any] = payload if isinstance(payload, dict) else {}
    entity = inner.get("entityName") or "transaction"
    if entity != "transaction":
        return TransactionNotice(about_transaction=False, subject=entity)
    references = tuple(
        str(value).strip()
        for value in (inner.get("invoiceNumber"), inner.get("merchantReferenceId"))
        if value not in (None, "")
    )
    return TransactionNotice(
        about_transaction=True,
        subject=entity,
        transaction_id=str(inner.get("id") or "").strip(),
        references=references,
    )
