"""Writes for notifications, one idea a module:

- ``events``: the outbox listener (``notifications_for_event``) and what each event type sends;
- ``queueing``: writing a notification row and enqueuing its send after commit; resending;
- ``rendering``: the templates' context and the rendered subject, text and html;
- ``sending``: one attempt (claim with a lease, email or SMS), its outcome and the retry schedule;
- ``scheduled``: renewal reminders, expiring cards, failing webhook endpoint alerts (beat);
- ``preferences``: the merchant's settings;
- ``gdpr``: a customer's export and erasure.

Callers import the public names from here (``from notifications.services import X``).
"""

from __future__ import annotations

from .events import notifications_for_event
from .gdpr import customer_notifications_export, customer_notifications_pseudonymize
from .preferences import SETTINGS_FIELDS, notification_settings_update, settings_for
from .queueing import SEND_TASK, notification_queue, notification_resend
from .rendering import notification_render, preview_context
from .scheduled import expiring_cards_queue, renewal_reminders_queue, webhook_failure_alerts_queue
from .sending import notification_send_run, notifications_due

__all__ = [
    "SEND_TASK",
    "SETTINGS_FIELDS",
    "customer_notifications_export",
    "customer_notifications_pseudonymize",
    "expiring_cards_queue",
    "notification_queue",
    "notification_render",
    "notification_resend",
    "notification_send_run",
    "notification_settings_update",
    "notifications_due",
    "notifications_for_event",
    "preview_context",
    "renewal_reminders_queue",
    "settings_for",
    "webhook_failure_alerts_queue",
]
