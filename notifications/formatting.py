"""How amounts, dates and cards appear in a message: the currency's own format, UTC dates (and the
merchant's zone where it set one), never more of a card than its brand and last four."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.dateparse import parse_date, parse_datetime

from core.money import CURRENCY_EXPONENTS

SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "americanexpress": "American Express",
    "discover": "Discover",
    "jcb": "JCB",
    "dinersclub": "Diners Club",
}


def money(amount, currency: str) -> str:
    """``"$1,234.50 USD"``, ``"¥1,500 JPY"``: grouped, with exactly the currency's minor digits."""
    currency = (currency or "").upper()
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}".strip()
    places = CURRENCY_EXPONENTS.get(currency, 2)
    number = f"{value:,.{places}f}"
    return f"{SYMBOLS.get(currency, '')}{number} {currency}".strip()


def card(brand: str | None, last_four: str | None) -> str:
    """``"Visa ending in 4242"``; only ever the brand and four digits."""
    name = BRANDS.get((brand or "").replace(" ", "").replace("_", "").lower(), (brand or "").strip().title())
    digits = "".join(ch for ch in (last_four or "") if ch.isdigit())[-4:]
    if not digits:
        return name or ""
    return f"{name} ending in {digits}".strip() if name else f"card ending in {digits}"


def _zone(name: str) -> ZoneInfo | None:
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when(value, tz_name: str = "") -> str:
    """``"2026-12-01 10:15 UTC"``, plus ``" (2026-12-01 05:15 EST)"`` in the merchant's zone."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return str(value or "")
    utc = moment.astimezone(ZoneInfo("UTC"))
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    zone = _zone(tz_name)
    if zone is not None:
        local = utc.astimezone(zone)
        text += f" ({local.strftime('%Y-%m-%d %H:%M')} {local.tzname()})"
    return text


def day(value) -> str:
    """A calendar date as ``2026-12-02`` (billing dates are UTC dates)."""
    parsed = parse_date(value) if isinstance(value, str) else value
    if isinstance(parsed, datetime):
        parsed = parsed.date()
    return parsed.isoformat() if isinstance(parsed, date) else str(value or "")
