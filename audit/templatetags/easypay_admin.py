"""Template filters of the back office: ``{{ amount|money:currency }}`` and ``{{ status|badge }}``.

``money`` is ``core.money.format_money`` (the currency's exponent, the code after it), the same
formatter the changelists and detail pages use, so an amount reads the same everywhere.
"""

from __future__ import annotations

from django import template

from core.adminlib import status_badge
from core.money import format_amount, format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """``117.46 USD``, ``100 JPY``; empty for no amount."""
    return format_money(amount, currency)


@register.filter
def amount(value, currency):
    """The amount alone, as the API writes it (``117.46``, ``100``): for input fields."""
    return "" if value is None or value == "" else format_amount(value, currency)


@register.filter
def badge(value):
    return status_badge(value)
