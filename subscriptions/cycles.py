"""Billing-cycle arithmetic: pure functions on UTC calendar dates, anchored to the start day.

The n-th billing date is always computed from the anchor (``start_date`` plus ``n`` cycles), never
by adding a cycle to the previous billing date, so month-end anchors do not drift: a monthly plan
started on Jan 31 bills Feb 28 (Feb 29 in a leap year), then Mar 31, Apr 30, May 31 ... and a yearly
plan started on Feb 29 bills Feb 28 in common years and Feb 29 again in the next leap year.

Periods are half-open: the period that starts on billing date ``n`` ends on billing date ``n + 1``
(the day the next period starts), as Stripe's ``current_period_end`` does.
"""

from __future__ import annotations

from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
QUARTERLY = "quarterly"
YEARLY = "yearly"

CYCLES = (DAILY, WEEKLY, MONTHLY, QUARTERLY, YEARLY)

# Cycle length in days (fixed-length cycles) or in months (calendar cycles).
_DAYS = {DAILY: 1, WEEKLY: 7}
_MONTHS = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}


def _check(cycle: str, n: int) -> None:
    if cycle not in CYCLES:
        raise ValueError(f"unknown billing cycle {cycle!r}")
    if n < 0:
        raise ValueError("n must be >= 0")


def billing_date(start_date: date, cycle: str, n: int) -> date:
    """The ``n``-th billing date of a subscription anchored on ``start_date`` (``n = 0`` is the start)."""
    _check(cycle, n)
    if cycle in _DAYS:
        return start_date + timedelta(days=_DAYS[cycle] * n)
    # relativedelta clamps the day to the target month's length (Jan 31 + 1 month = Feb 28/29).
    return start_date + relativedelta(months=_MONTHS[cycle] * n)


def _index_at_or_before(start_date: date, cycle: str, day: date) -> int:
    """The largest ``n`` with ``billing_date(n) <= day`` (0 when ``day`` is before the start)."""
    if day <= start_date:
        return 0
    if cycle in _DAYS:
        return (day - start_date).days // _DAYS[cycle]
    step = _MONTHS[cycle]
    months = (day.year - start_date.year) * 12 + (day.month - start_date.month)
    n = max(months // step, 0)
    # The clamped day can put billing_date(n) after ``day`` within the same month (anchor 31, day 15).
    while n > 0 and billing_date(start_date, cycle, n) > day:
        n -= 1
    return n


def billing_date_on_or_after(start_date: date, cycle: str, day: date) -> date:
    """The first billing date of the anchor that falls on or after ``day`` (``start_date`` at the latest)."""
    _check(cycle, 0)
    n = _index_at_or_before(start_date, cycle, day)
    current = billing_date(start_date, cycle, n)
    return current if current >= day else billing_date(start_date, cycle, n + 1)


def billing_date_after(start_date: date, cycle: str, day: date) -> date:
    """The first billing date of the anchor strictly after ``day``: the end of the period starting on ``day``."""
    return billing_date_on_or_after(start_date, cycle, day + timedelta(days=1))
