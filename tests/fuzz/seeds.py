"""Real objects for the schema fuzz, so by-id operations are fuzzed on objects that exist, in states
that let them succeed (a captured payment to refund, an authorized one to capture or cancel, an active
subscription to pause, a delivery to redeliver ...), not only on random ids that answer 404.

``Seeds`` creates each pool the first time an operation needs it, through the API itself (payments,
subscriptions, against the Authorize.Net emulator) or the services (webhook endpoints, inbound
notifications), and ``Seeds.apply`` puts the ids of real objects into the path parameters of three
cases in four whose path parameters were generated valid (a case that fuzzes the path with invalid
values keeps them, and the fourth valid case keeps its random id, so unknown ids stay covered). The
pools hold a few objects each, taken in turn, so one example that refunds or deletes its object does
not leave every later example a 409 or a 404.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient
from schemathesis.core.parameters import ParameterLocation

from payments.inbound import services as inbound_services
from webhooks import services as webhook_services
from webhooks.models import EventDelivery, InboundEvent, WebhookEndpoint

POOL_SIZE = 3

# Path prefix -> pool of the ``{id}`` parameter under it (first match wins).
ID_POOLS = (
    ("/api/v1/webhooks/authorize-net/", None),
    ("/api/v1/payments/", "payments"),
    ("/api/v1/subscriptions/", "subscriptions"),
    ("/api/v1/webhooks/", "endpoints"),
    ("/api/v1/events/", "events"),
    ("/api/v1/auth/api-keys/", "api_keys"),
    ("/api/v1/audit-logs/", "audit_logs"),
)


class Seeds:
    def __init__(self, *, key: str, merchant, make_api_key) -> None:
        self.client = APIClient()
        self.client.credentials(HTTP_X_API_KEY=key)
        self.merchant = merchant
        self.make_api_key = make_api_key
        self.pools: dict[str, list] = {}
        self._turn: dict[str, itertools.count] = {}
        self._cases = itertools.count()
        self.applied = 0

    # --- pools ------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, body, format="json")
        # Django's test client reconnects close_old_connections when it is done; the fuzz calls the WSGI
        # app directly inside the test's transaction, which must stay open (see wsgi_in_test_transaction).
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        assert response.status_code in (200, 201), (path, response.status_code, response.content[:500])
        return response.json()["data"]

    def _payments(self) -> list[str]:
        ids = []
        for n in range(POOL_SIZE):
            for capture in (True, False):  # captured (refundable) and authorized (capturable, voidable)
                body = {"amount": f"{20 + n}.00", "currency": "USD", "card_token": "tok_visa", "capture": capture}
                ids.append(self._post("/api/v1/payments", body)["id"])
        return ids

    def _subscriptions(self) -> list[str]:
        ids = []
        for n in range(POOL_SIZE + 1):
            body = {
                "customer_id": f"cus_seed{n}",
                "plan_id": "plan_seed",
                "amount": "9.99",
                "currency": "USD",
                "billing_cycle": "monthly",
                "card_token": "tok_visa",
            }
            ids.append(self._post("/api/v1/subscriptions", body)["id"])
        self._post(f"/api/v1/subscriptions/{ids[-1]}/pause", {})  # one paused, to resume
        return ids

    def _endpoints(self) -> list[str]:
        """Endpoints on a public name (never resolved: deliveries run on commit, which a test never
        reaches), each with a delivery of a real event."""
        ids = []
        for n in range(POOL_SIZE):
            endpoint = WebhookEndpoint.objects.create(
                merchant=self.merchant, url=f"https://hooks{n}.example.com/easypay", events=["*"]
            )
            ids.append(str(endpoint.pk))
        webhook_services.endpoints._endpoints_cache_invalidate(self.merchant.pk)
        self.pool("payments")  # their events now get a delivery per endpoint
        return ids

    def _deliveries(self) -> list[tuple[str, str]]:
        self.pool("endpoints")
        if not EventDelivery.objects.filter(endpoint__merchant=self.merchant).exists():
            self._post("/api/v1/payments", {"amount": "5.00", "currency": "USD", "card_token": "tok_visa"})
        deliveries = EventDelivery.objects.filter(endpoint__merchant=self.merchant).order_by("created_at")
        return [(str(d.endpoint_id), str(d.pk)) for d in deliveries[: 2 * POOL_SIZE]]

    def _events(self) -> list[str]:
        from webhooks.models import Event

        self.pool("payments")
        return [str(pk) for pk in Event.objects.filter(merchant=self.merchant).values_list("pk", flat=True)[:6]]

    def _api_keys(self) -> list[str]:
        """Other keys than the fuzz key (revoking or narrowing that one would end the run)."""
        return [
            str(self.make_api_key(merchant=self.merchant, permissions=["payments:read"], name=f"seed {n}").api_key.pk)
            for n in range(POOL_SIZE)
        ]

    def _audit_logs(self) -> list[str]:
        from audit.models import AuditLog

        self.pool("payments")
        rows = AuditLog.objects.filter(merchant_id=self.merchant.pk).values_list("pk", flat=True)[:POOL_SIZE]
        return [str(pk) for pk in rows]

    def _inbound(self) -> list[str]:
        payments = self.pool("payments")
        ids = []
        for payment_id in payments[:POOL_SIZE]:
            from payments.models import Payment

            payment = Payment.objects.get(pk=payment_id)
            raw, headers = inbound_services.inbound_sample_build(
                event_type="net.authorize.payment.authcapture.created",
                transaction_id=payment.processor_transaction_id,
                amount=payment.amount,
            )
            receipt = inbound_services.inbound_receive(
                raw_body=raw, headers=headers, source_ip="127.0.0.1", merchant_id=self.merchant.pk
            )
            ids.append(str(receipt.event.pk))
        assert InboundEvent.objects.filter(pk__in=ids).count() == len(ids)
        return ids

    def pool(self, name: str) -> list:
        if name not in self.pools:
            builder: Callable[[], list] = getattr(self, f"_{name}")
            self.pools[name] = builder()
            assert self.pools[name], f"seeding made no {name}"
            self._turn[name] = itertools.count()
        return self.pools[name]

    def _next(self, name: str):
        pool = self.pool(name)
        return pool[next(self._turn[name]) % len(pool)]

    # --- cases ------------------------------------------------------------------------------------

    @staticmethod
    def _id_pool(path: str) -> str | None:
        for prefix, pool in ID_POOLS:
            if path.startswith(prefix):
                return pool
        return None

    def reset(self) -> None:
        """Take the pools from their start again (a stateful run replays the same ids)."""
        self._cases = itertools.count()
        self._turn = {name: itertools.count() for name in self.pools}

    def apply(self, case, only: tuple[str, ...] | None = None) -> None:
        """Real ids in the path parameters of three valid cases in four (``only``: of those pools)."""
        parameters = case.path_parameters
        if not parameters or case.method.upper() != case.operation.method.upper():
            return
        path = case.operation.path
        pool = "deliveries" if "delivery_id" in parameters else self._id_pool(path)
        if "webhook_id" in parameters:
            pool = "inbound"
        if pool is None or (only is not None and pool not in only):
            return
        meta = case.meta
        if meta is not None and meta.is_negative_at(ParameterLocation.PATH):
            return
        if next(self._cases) % 4 == 3:
            return
        if pool == "deliveries":
            endpoint_id, delivery_id = self._next("deliveries")
            case.path_parameters = {**parameters, "id": endpoint_id, "delivery_id": delivery_id}
        elif pool == "inbound":
            case.path_parameters = {**parameters, "webhook_id": self._next("inbound")}
        elif "id" in parameters:
            case.path_parameters = {**parameters, "id": self._next(pool)}
        else:
            return
        self.applied += 1
