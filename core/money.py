"""Money at the edges: decimal strings in the API, currency-quantized ``Decimal`` inside.

Amounts are stored as ``DecimalField(max_digits=12, decimal_places=2)`` quantized to the
currency's exponent (2 for USD, 0 for JPY), never floats or strings. The API accepts only a plain
decimal string ("25.99") and always answers with every minor digit ("25.90", "1000" for JPY).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import cast

from django.conf import settings
from rest_framework import serializers

from core.errors import ValidationFailed

# ISO 4217 exponents of the currencies Authorize.Net settles; the configured list picks among them.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "CAD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "DKK": 2,
    "NOK": 2,
    "SEK": 2,
    "PLN": 2,
    "ZAR": 2,
    "JPY": 0,
}

# ASCII digits only and the whole string: ``\d`` would take Arabic-Indic, Devanagari or full-width
# digits (which Decimal() reads), and ``$`` would let a trailing newline through.
_AMOUNT = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_DIGITS = 12
DECIMAL_PLACES = 2


def amount_match(value: object) -> re.Match | None:
    """The amount syntax's match of all of ``value`` (ASCII digits, optional ``.`` and digits), or None."""
    return _AMOUNT.fullmatch(value) if isinstance(value, str) else None


def supported_currencies() -> list[str]:
    return [c for c in settings.SUPPORTED_CURRENCIES if c in CURRENCY_EXPONENTS]


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34")``, USD -> ``1234``; JPY ``Decimal("500")`` -> ``500``. Exact (no rounding)."""
    minor = Decimal(amount).scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more digits than {currency} allows")
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return (Decimal(minor).scaleb(-exponent(currency))).quantize(quantum(currency))


def max_amount() -> Decimal:
    # env_str() with a default never gives None; its signature does not say so.
    return Decimal(cast("str", settings.PAYMENT_MAX_AMOUNT))


def validate_currency(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise serializers.ValidationError("Must be an ISO 4217 currency code such as 'USD'.")
    if not _CURRENCY.fullmatch(value):
        raise serializers.ValidationError("Must be an upper-case ISO 4217 currency code such as 'USD'.")
    if value not in supported_currencies():
        raise serializers.ValidationError(
            f"Currency '{value}' is not supported. Supported: {', '.join(supported_currencies())}."
        )
    return value


def parse_amount(value: object, currency: str | None, *, allow_zero: bool = False) -> Decimal:
    """A contract amount string -> ``Decimal`` quantized to the currency, or ``ValidationError``."""
    if not isinstance(value, str):
        raise serializers.ValidationError('Must be a decimal string such as "25.99", not a JSON number or null.')
    match = _AMOUNT.fullmatch(value)
    if not match:
        raise serializers.ValidationError('Must be a plain positive decimal string such as "25.99".')
    frac = match.group("frac") or ""
    if currency is not None and currency in CURRENCY_EXPONENTS and len(frac) > exponent(currency):
        places = exponent(currency)
        raise serializers.ValidationError(
            f"{currency} amounts take at most {places} decimal place{'s' if places != 1 else ''}."
        )
    if len(frac) > DECIMAL_PLACES:
        raise serializers.ValidationError(f"At most {DECIMAL_PLACES} decimal places.")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise serializers.ValidationError("Must be a decimal string.") from None
    if amount == 0 and not allow_zero:
        raise serializers.ValidationError("Must be greater than zero.")
    if amount > max_amount():
        raise serializers.ValidationError(f"Must not exceed {max_amount()}.")
    if currency is not None and currency in CURRENCY_EXPONENTS:
        amount = amount.quantize(quantum(currency))
    return amount


def checked_amount(amount: Decimal, currency: str) -> Decimal:
    """A service's amount check: ``amount`` (already a ``Decimal``) quantized to ``currency``, or
    ``ValidationFailed`` naming the field. ``parse_amount`` is the API's text -> ``Decimal`` step."""
    if currency not in supported_currencies() or currency not in CURRENCY_EXPONENTS:
        raise ValidationFailed(details={"currency": [f"Currency '{currency}' is not supported."]})
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValidationFailed(details={"amount": ["Must be greater than zero."]})
    if amount > max_amount():
        raise ValidationFailed(details={"amount": [f"Must not exceed {max_amount()}."]})
    if amount != amount.quantize(quantum(currency)):
        raise ValidationFailed(details={"amount": [f"Too many decimal places for {currency}."]})
    return amount.quantize(quantum(currency))


def format_amount(amount: Decimal | None, currency: str) -> str | None:
    """``amount`` as the API writes it: every minor digit of ``currency`` and no more ("25.90", "100"
    for JPY). A currency outside the table gets the columns' two places."""
    if amount is None:
        return None
    places = CURRENCY_EXPONENTS.get(currency, DECIMAL_PLACES)
    return str(Decimal(amount).quantize(Decimal(1).scaleb(-places)))


def format_money(amount: Decimal | None, currency: str | None) -> str:
    """An amount with its currency code for people ("117.46 USD", "100 JPY"); "" for no amount.

    The one formatter of the back office (changelists, detail pages, the dashboard and the action
    confirmation pages use it, directly or through the ``money`` template filter), so an amount
    reads the same there as in the API, whatever the database handed back (SQLite's ``Sum`` of a
    decimal column comes back as ``117.460000000000``).
    """
    if amount is None or amount == "":
        return ""
    code = (currency or "").upper()
    return f"{format_amount(Decimal(amount), code)} {code}".strip()


class AmountField(serializers.Field):
    """An amount string in, a ``Decimal`` out; rendered with the object's currency exponent.

    Per-currency decimal places are checked in the serializer's ``validate`` (the currency is
    another field), via :func:`parse_amount`.
    """

    default_error_messages = {"invalid": 'Must be a decimal string such as "25.99".'}

    def __init__(self, *, currency_attr: str = "currency", **kwargs):
        self.currency_attr = currency_attr
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return parse_amount(data, None)

    def get_attribute(self, instance):
        self._currency = getattr(instance, self.currency_attr, None)
        return super().get_attribute(instance)

    def to_representation(self, value):
        currency = getattr(self, "_currency", None) or "USD"
        return format_amount(value, currency)
