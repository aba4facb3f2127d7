"""Every text field of every input serializer takes JSON strings only: DRF's CharField turns ``123``
into ``"123"``, which the schema forbids (schemathesis' negative-data check found
``POST /auth/tokens/validate {"token": 123}`` answered 200). Generated over all input serializers."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from accounts.api import serializers as accounts_serializers
from core.serializers import NOT_A_STRING, StrictInputMixin
from notifications.api import serializers as notifications_serializers
from payments.api import serializers as payments_serializers
from payments.inbound.api import serializers as inbound_serializers
from subscriptions.api import serializers as subscriptions_serializers
from webhooks.api import serializers as webhooks_serializers

STRICT_BASES = (
    StrictInputMixin,
    accounts_serializers.StrictSerializer,
    payments_serializers.StrictInputSerializer,
    subscriptions_serializers._StrictSerializer,
)
MODULES = (
    accounts_serializers,
    notifications_serializers,
    payments_serializers,
    inbound_serializers,
    subscriptions_serializers,
    webhooks_serializers,
)


def _input_serializers():
    found = set()
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, STRICT_BASES) and value not in STRICT_BASES:
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__name__}")


CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}.{name}")
    for cls in _input_serializers()
    for name, field in cls().fields.items()
    if isinstance(field, serializers.CharField) and not field.read_only
]


def test_the_input_serializers_have_text_fields_to_check():
    assert len(CASES) >= 20


@pytest.mark.parametrize("value", [123, 1.5, True, 0])
@pytest.mark.parametrize(("cls", "name"), CASES)
def test_a_number_or_boolean_in_a_text_field_is_refused_naming_the_field(cls, name, value):
    serializer = cls(data={name: value})
    assert not serializer.is_valid()
    assert serializer.errors[name] == [NOT_A_STRING]
