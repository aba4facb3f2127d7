"""List-filter pieces shared by every app's django-filter FilterSets."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import django_filters
from django import forms
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

MAX_OFFSET = timedelta(hours=14)


class InstantField(forms.Field):
    """An ISO 8601 date-time (``2024-01-31T12:00:00Z``) or a date (midnight UTC)."""

    default_error_messages = {"invalid": "Enter an ISO 8601 date or date-time, e.g. 2024-01-31T12:00:00Z."}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().replace(" ", "+")  # a "+00:00" offset arrives as " 00:00" in a query
        try:
            moment = parse_datetime(text)
            if moment is None:
                day = parse_date(text)
                moment = datetime.combine(day, time.min) if day else None
        except ValueError:
            moment = None
        if moment is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        offset = moment.utcoffset()
        assert offset is not None  # an aware datetime from parse_datetime has a fixed offset
        if abs(offset) > MAX_OFFSET:  # no place on Earth is more than 14 h from UTC
            raise forms.ValidationError("The UTC offset must be between -14:00 and +14:00.", code="invalid")
        # Normalised to UTC: the database never sees an offset it cannot store (e.g. +23:59).
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class InstantFilter(django_filters.Filter):
    field_class = InstantField


class AmountQueryField(forms.Field):
    """An amount in a list filter: the API's amount syntax (ASCII digits, an optional point and at
    most two decimals, the whole value, nothing trimmed); zero is allowed. Django's DecimalField would
    strip whitespace and read any Unicode digit."""

    default_error_messages = {"invalid": 'Enter a plain decimal amount such as "25.99".'}
    MAX_INTEGER_DIGITS = 10

    def to_python(self, value):
        from core.money import DECIMAL_PLACES, amount_match

        if value in (None, ""):
            return None
        match = amount_match(value)
        if match is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(match.group("frac") or "") > DECIMAL_PLACES or len(match.group("int")) > self.MAX_INTEGER_DIGITS:
            raise forms.ValidationError("At most 10 digits before the point and 2 after it.", code="invalid")
        return Decimal(value)


class AmountFilter(django_filters.Filter):
    field_class = AmountQueryField


class _BooleanChoiceField(forms.TypedChoiceField):
    def to_python(self, value):
        return super().to_python(value).lower()  # "True", "FALSE" are accepted as well


@extend_schema_field(OpenApiTypes.BOOL)  # a boolean; not an enum of the strings "true"/"false"
class StrictBooleanFilter(django_filters.BooleanFilter):
    """``true``/``false`` (any case) only: anything else (``1``, ``yes``, ``31341165``) is a 400,
    never silently ignored."""

    field_class = _BooleanChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        return super().filter(qs, value)


class ListFilterSet(django_filters.FilterSet):
    """A FilterSet that does no work for a request naming none of its filters (the common
    ``GET /payments?limit=20``): without a value every filter leaves the queryset as it is and no
    field can be invalid, so building and validating the form (~0.6 ms) would change nothing.
    A request naming any filter, even with an empty value, is validated and filtered as usual."""

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        # Naming none of the filters, the request skips FilterSet.__init__'s deep copy of every filter
        # too (5 % of a list request's CPU); ``filters`` is then empty, and ``qs`` the queryset itself.
        self._nothing_named = data is not None and not any(name in data for name in self.base_filters)
        if not self._nothing_named:
            super().__init__(data, queryset, request=request, prefix=prefix)
            return
        self.is_bound = True
        self.data = data
        self.queryset = self._meta.model._default_manager.all() if queryset is None else queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {}

    def _names_no_filter(self) -> bool:
        return self._nothing_named

    def is_valid(self) -> bool:
        return True if self._names_no_filter() else super().is_valid()

    @property
    def qs(self):
        if self._names_no_filter():
            return self.queryset.all()
        return super().qs
