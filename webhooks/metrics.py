"""Prometheus counters of the webhooks app (exported at /metrics by django-prometheus)."""

from prometheus_client import Counter

# result: succeeded | retrying | failed (retries exhausted) | skipped (endpoint disabled/deleted)
WEBHOOK_DELIVERIES = Counter(
    "easypay_webhook_deliveries", "Outbound webhook delivery attempts by result.", labelnames=("result",)
)
# result: accepted | duplicate | invalid_signature | malformed | processed | ignored | retrying | failed
WEBHOOK_INBOUND = Counter(
    "easypay_webhook_inbound", "Inbound Authorize.Net notifications by result.", labelnames=("result",)
)
