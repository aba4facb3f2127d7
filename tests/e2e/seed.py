"""Realistic back-office data for the browser test: several currencies (JPY among them), long
merchant and customer names and emails, every status of every model the admin lists.

Rows are written with the ORM (the admin only reads them); the payment the test acts on is made by
the real service against the emulator, in the test itself.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

LONG_MERCHANT = "Northwind Traders International Holdings (EMEA) GmbH & Co. KG"
LONG_NAME = "Maximiliana Alexandrina Montgomery-Fitzgerald van der Westhuizen"
LONG_EMAIL = "maximiliana.alexandrina.montgomery-fitzgerald@subsidiary.long-example-domain.co.uk"
LONG_URL = "https://hooks.northwind-traders.example.com/integrations/easypay/v1/notifications/receive?tenant=emea-prod"

PAYMENT_ROWS = [
    # (status, amount, currency, captured, refunded)
    ("pending", "19.99", "USD", "0", "0"),
    ("authorized", "250.00", "USD", "0", "0"),
    ("captured", "1234567.89", "USD", "1234567.89", "0"),
    ("partially_refunded", "80.00", "EUR", "80.00", "30.00"),
    ("refunded", "45.50", "GBP", "45.50", "45.50"),
    ("voided", "12.00", "CAD", "0", "0"),
    ("declined", "99.00", "AUD", "0", "0"),
    ("failed", "5.00", "NZD", "0", "0"),
    ("held", "640.00", "USD", "0", "0"),
    ("captured", "100", "JPY", "100", "0"),
    ("captured", "129800", "JPY", "129800", "0"),
    ("partially_refunded", "5000", "JPY", "5000", "1500"),
]


def seed_back_office() -> dict:
    from accounts.models import APIKey, Merchant
    from accounts.services import api_key_create, api_key_revoke
    from audit.models import AuditLog
    from payments.models import Payment, Refund
    from subscriptions.models import BillingAttempt, Subscription
    from webhooks.models import DeliveryAttempt, Event, EventDelivery, InboundEvent, WebhookEndpoint

    now = timezone.now()
    big = Merchant.objects.create(name=LONG_MERCHANT, email="payments-operations-team@northwind-traders.example.com")
    small = Merchant.objects.create(name="Kyoto Tea House", email="hello@kyoto-tea.example.jp")
    Merchant.objects.create(name="Suspended Example Ltd", email="ops@suspended.example", status="suspended")

    payments = []
    for index, (status, amount, currency, captured, refunded) in enumerate(PAYMENT_ROWS):
        merchant = small if currency == "JPY" else big
        payments.append(
            Payment.objects.create(
                merchant=merchant,
                amount=Decimal(amount),
                currency=currency,
                status=status,
                authorized_amount=Decimal(amount) if status not in ("pending", "declined", "failed") else None,
                captured_amount=Decimal(captured),
                refunded_amount=Decimal(refunded),
                customer_id=f"cust_{index:03d}_{'x' * 40}" if index % 3 == 0 else f"cust_{index:03d}",
                customer_email=LONG_EMAIL if index % 2 == 0 else f"buyer{index}@example.com",
                customer_name=LONG_NAME if index % 2 == 0 else f"Buyer {index}",
                card_last_four="4242" if index % 2 else "1111",
                card_brand="Visa" if index % 2 else "MasterCard",
                processor_transaction_id=str(70000000000 + index),
                is_test=index % 4 != 0,
            )
        )
    by_status = {p.status: p for p in payments}
    for status, amount in (("succeeded", "30.00"), ("pending", "5.00"), ("failed", "10.00"), ("unknown", "2.50")):
        Refund.objects.create(
            payment=by_status["partially_refunded"],
            amount=Decimal(amount),
            status=status,
            reason="Customer returned the item after the 30-day window; goodwill refund approved by finance",
        )

    subs = []
    for index, (status, cycle, amount, currency) in enumerate(
        [
            ("active", "monthly", "29.99", "USD"),
            ("paused", "weekly", "9.50", "EUR"),
            ("past_due", "yearly", "299.00", "GBP"),
            ("cancelled", "daily", "1.00", "USD"),
            ("active", "quarterly", "3000", "JPY"),
        ]
    ):
        subs.append(
            Subscription.objects.create(
                merchant=small if currency == "JPY" else big,
                external_id=f"sub_{index:02d}{'0' * 22}",
                customer_id=f"cust_{index:03d}_{'y' * 30}",
                customer_email=LONG_EMAIL,
                customer_name=LONG_NAME,
                plan_id="plan_premium_family_bundle_annual_2026",
                status=status,
                billing_cycle=cycle,
                amount=Decimal(amount),
                currency=currency,
                start_date=timezone.localdate(now) - timedelta(days=40),
                next_billing_date=timezone.localdate(now) + timedelta(days=index),
            )
        )
    for index, status in enumerate(("pending", "succeeded", "failed")):
        sub = subs[index]
        BillingAttempt.objects.create(
            subscription=sub,
            period_start=timezone.localdate(now) - timedelta(days=30 * (index + 1)),
            period_end=timezone.localdate(now) - timedelta(days=30 * index),
            attempt_number=1,
            status=status,
            payment=payments[2] if status == "succeeded" else None,
            amount=sub.amount,
            currency=sub.currency,
            payment_external_id=f"pay_sub_{index:02d}_{'0' * 20}",
            failure_reason="declined" if status == "failed" else "",
            claimed_at=now - timedelta(hours=index),
        )
    BillingAttempt.objects.create(
        subscription=subs[4],
        period_start=timezone.localdate(now),
        period_end=timezone.localdate(now) + timedelta(days=90),
        attempt_number=1,
        status="succeeded",
        amount=subs[4].amount,
        currency="JPY",
        payment_external_id="pay_sub_jpy_0000000000",
        claimed_at=now,
    )

    endpoint = WebhookEndpoint.objects.create(
        merchant=big,
        url=LONG_URL,
        events=["payment.captured", "payment.refunded", "payment.partially_refunded", "subscription.past_due"],
        description="Production ERP integration",
    )
    WebhookEndpoint.objects.create(merchant=small, url="https://kyoto-tea.example.jp/hooks", events=["*"])
    deliveries = {}
    for index, (status, next_at, attempts) in enumerate(
        [
            ("pending", now + timedelta(minutes=5), 1),  # on schedule
            ("pending", now - timedelta(hours=2), 3),  # overdue: stuck
            ("pending", now - timedelta(minutes=30), 2),  # overdue: stuck
            ("failed", None, 8),
            ("succeeded", None, 1),
        ]
    ):
        event = Event.objects.create(
            merchant=big, type="payment.captured", data={"id": payments[2].external_id, "object": "payment"}
        )
        deliveries[index] = EventDelivery.objects.create(
            event=event,
            endpoint=endpoint,
            status=status,
            attempt_count=attempts,
            next_attempt_at=next_at,
            last_status_code=None if status == "succeeded" else 503,
            last_error="" if status == "succeeded" else "HTTPSConnectionPool: Read timed out. (read timeout=10)",
            completed_at=now if status != "pending" else None,
        )
        DeliveryAttempt.objects.create(
            delivery=deliveries[index],
            attempt_number=attempts,
            url=LONG_URL,
            status_code=200 if status == "succeeded" else 503,
            latency_ms=412,
            succeeded=status == "succeeded",
            error="" if status == "succeeded" else "Service Unavailable",
        )

    for index, status in enumerate(("pending", "processing", "processed", "failed", "ignored")):
        InboundEvent.objects.create(
            event_id=f"{index:08d}-5a1c-4b7e-9d2f-{'0' * 12}",
            event_type="net.authorize.payment.authcapture.created",
            status=status,
            signature_valid=status != "failed",
            merchant=big,
            retry_count=index,
            payload={"notificationId": str(index)},
        )

    created = api_key_create(merchant=big, name="ERP production integration (Frankfurt DC)", permissions=["*"])
    api_key_create(merchant=small, name="POS terminal", permissions=["payments:read", "payments:write"], mode="live")
    old = api_key_create(merchant=big, name="Old staging key", permissions=["payments:read"])
    api_key_revoke(api_key=old.api_key)

    for index, (action, code) in enumerate(
        [
            ("payment.create", 201),
            ("payment.refund", 200),
            ("admin.payment.refund", 200),
            ("subscription.cancel", 409),
            ("webhook_endpoint.update", 400),
        ]
    ):
        AuditLog.objects.create(
            correlation_id=f"req_{index:02d}{'a' * 24}",
            service_name="easypay-api",
            action=action,
            resource_type=action.split(".")[0].removeprefix("admin."),
            resource_id=str(payments[index].pk),
            merchant=big,
            actor_type="staff" if action.startswith("admin.") else "api_key",
            actor_id=created.api_key.key_id,
            ip_address="203.0.113.42",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537",
            status_code=code,
            duration_ms=37 + index,
            request_data={"amount": "10.00"},
            response_data={"status": "ok"},
        )
    return {
        "payments": payments,
        "merchants": (big, small),
        "api_keys": list(APIKey.objects.all()),
        "deliveries": deliveries,
    }
