"""Billing-cycle arithmetic: anchored to the start day, UTC dates, no month-end drift."""

from datetime import date, timedelta

import pytest

from subscriptions import cycles
from subscriptions.cycles import billing_date, billing_date_after, billing_date_on_or_after


def test_daily_and_weekly_are_plain_day_counts():
    start = date(2024, 12, 30)
    assert [billing_date(start, "daily", n) for n in range(4)] == [
        date(2024, 12, 30),
        date(2024, 12, 31),
        date(2025, 1, 1),
        date(2025, 1, 2),
    ]
    assert [billing_date(start, "weekly", n) for n in range(3)] == [
        date(2024, 12, 30),
        date(2025, 1, 6),
        date(2025, 1, 13),
    ]
    # Across a leap day.
    assert billing_date(date(2024, 2, 28), "daily", 2) == date(2024, 3, 1)


def test_monthly_from_jan_31_clamps_then_returns_to_the_31st():
    start = date(2023, 1, 31)
    assert [billing_date(start, "monthly", n) for n in range(5)] == [
        date(2023, 1, 31),
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 4, 30),
        date(2023, 5, 31),
    ]


def test_monthly_from_jan_31_in_a_leap_year_bills_feb_29():
    assert billing_date(date(2024, 1, 31), "monthly", 1) == date(2024, 2, 29)
    assert billing_date(date(2024, 1, 31), "monthly", 2) == date(2024, 3, 31)


def test_24_months_of_a_jan_31_monthly_never_drift():
    start = date(2023, 1, 31)
    dates = [billing_date(start, "monthly", n) for n in range(25)]
    for n, day in enumerate(dates):
        year, month = divmod(2023 * 12 + n, 12)
        month += 1
        # Always the last day of its month: the 31st whenever the month has one.
        assert (day.year, day.month) == (year, month)
        assert (day + timedelta(days=1)).day == 1
    assert dates[-1] == date(2025, 1, 31)
    # Computing each next date from the previous one (the drifting way) would stick at the 28th.
    assert date(2023, 3, 31) in dates and date(2024, 3, 31) in dates


def test_quarterly_is_three_anchored_months():
    start = date(2023, 11, 30)
    assert [billing_date(start, "quarterly", n) for n in range(5)] == [
        date(2023, 11, 30),
        date(2024, 2, 29),
        date(2024, 5, 30),
        date(2024, 8, 30),
        date(2024, 11, 30),
    ]


def test_yearly_from_feb_29_bills_feb_28_then_feb_29_in_the_next_leap_year():
    start = date(2024, 2, 29)
    assert [billing_date(start, "yearly", n) for n in range(5)] == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]


def test_dec_31_anchor_crosses_years():
    start = date(2023, 12, 31)
    assert [billing_date(start, "monthly", n) for n in range(4)] == [
        date(2023, 12, 31),
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    assert billing_date(start, "quarterly", 1) == date(2024, 3, 31)
    assert billing_date(start, "quarterly", 2) == date(2024, 6, 30)
    assert billing_date(start, "yearly", 1) == date(2024, 12, 31)
    assert billing_date(start, "weekly", 1) == date(2024, 1, 7)
    assert billing_date(start, "daily", 1) == date(2024, 1, 1)


@pytest.mark.parametrize("cycle", cycles.CYCLES)
@pytest.mark.parametrize("start", [date(2024, 1, 31), date(2024, 2, 29), date(2023, 12, 31), date(2025, 6, 15)])
def test_next_date_after_any_billing_date_is_the_following_one(cycle, start):
    for n in range(30):
        current = billing_date(start, cycle, n)
        assert billing_date_after(start, cycle, current) == billing_date(start, cycle, n + 1)
        assert billing_date_on_or_after(start, cycle, current) == current


@pytest.mark.parametrize("cycle", cycles.CYCLES)
def test_first_date_on_or_after_any_day_is_the_next_anchor(cycle):
    start = date(2024, 1, 31)
    anchors = [billing_date(start, cycle, n) for n in range(40)]
    day = start - timedelta(days=3)
    while day < anchors[-2]:
        expected = next(a for a in anchors if a >= day)
        assert billing_date_on_or_after(start, cycle, day) == expected, day
        day += timedelta(days=1)


def test_resume_mid_month_picks_the_clamped_anchor():
    # Anchor 31: on Apr 15 the next anchor is Apr 30, not May 31.
    assert billing_date_on_or_after(date(2024, 1, 31), "monthly", date(2024, 4, 15)) == date(2024, 4, 30)
    assert billing_date_on_or_after(date(2024, 1, 31), "monthly", date(2024, 5, 1)) == date(2024, 5, 31)


def test_unknown_cycle_and_negative_index_are_refused():
    with pytest.raises(ValueError):
        billing_date(date(2024, 1, 1), "fortnightly", 1)
    with pytest.raises(ValueError):
        billing_date(date(2024, 1, 1), "monthly", -1)
