"""Prometheus metrics of the billing pass (exported at /metrics with the rest of the process's)."""

from prometheus_client import Counter

# result: succeeded, declined, hard_declined, processor_error, processor_unavailable, pending, skipped,
# interrupted, error
BILLING_TOTAL = Counter(
    "easypay_subscription_billing_total",
    "Subscription renewals handled by the billing pass, by result.",
    ["result"],
)
