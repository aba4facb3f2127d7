"""Amount parsing and formatting rules of CONTRACT section 2."""

from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError

from core.money import format_amount, parse_amount, validate_currency


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("25.99", "USD", Decimal("25.99")),
        ("25.9", "USD", Decimal("25.90")),
        ("7", "USD", Decimal("7.00")),
        ("1000", "JPY", Decimal("1000")),
        ("999999.99", "USD", Decimal("999999.99")),
    ],
)
def test_valid_amounts(raw, currency, expected):
    assert parse_amount(raw, currency) == expected


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        (25.99, "USD"),
        (25, "USD"),
        (None, "USD"),
        ("", "USD"),
        ("-1.00", "USD"),
        ("0", "USD"),
        ("0.00", "USD"),
        ("1e3", "USD"),
        ("1.999", "USD"),
        ("10.5", "JPY"),
        ("1000000.00", "USD"),
        (" 5.00", "USD"),
        ("5.", "USD"),
        (".5", "USD"),
        ("NaN", "USD"),
        ("Infinity", "USD"),
        ("1,000.00", "USD"),
        (True, "USD"),
    ],
)
def test_invalid_amounts(raw, currency):
    with pytest.raises(ValidationError):
        parse_amount(raw, currency)


def test_formatting_keeps_every_minor_digit():
    assert format_amount(Decimal("25.9"), "USD") == "25.90"
    assert format_amount(Decimal("0"), "USD") == "0.00"
    assert format_amount(Decimal("1000"), "JPY") == "1000"


@pytest.mark.parametrize("bad", ["usd", "US", "XXX", "", None, 840, "EURO"])
def test_invalid_currencies(bad):
    with pytest.raises(ValidationError):
        validate_currency(bad)


def test_configured_maximum(settings):
    settings.PAYMENT_MAX_AMOUNT = "100.00"
    with pytest.raises(ValidationError):
        parse_amount("100.01", "USD")
    assert parse_amount("100.00", "USD") == Decimal("100.00")
