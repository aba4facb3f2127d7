"""Writes of the outbox: recording events (``events``), delivering them to merchant endpoints
(``deliveries``) and managing those endpoints (``endpoints``). The event types are in
``webhooks.catalogue``.

The public services are importable from here (``from webhooks.services import event_record``); code
that patches or reads module state names the module that defines it (``webhooks.services.endpoints``).
"""

from ..catalogue import EVENT_TYPES
from .deliveries import (
    USER_AGENT,
    deliveries_due,
    delivery_attempt_run,
    delivery_redeliver,
    event_body,
    event_redeliver,
)
from .endpoints import (
    EndpointWithSecret,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_update,
)
from .events import event_listener_register, event_record, event_sequence_next

__all__ = (
    "EVENT_TYPES",
    "USER_AGENT",
    "EndpointWithSecret",
    "deliveries_due",
    "delivery_attempt_run",
    "delivery_redeliver",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_rotate_secret",
    "endpoint_update",
    "event_body",
    "event_listener_register",
    "event_record",
    "event_redeliver",
    "event_sequence_next",
)
