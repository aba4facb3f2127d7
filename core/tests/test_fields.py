import pytest
from rest_framework import serializers

from core.fields import StrictBooleanField


@pytest.mark.parametrize("value", [True, False])
def test_strict_boolean_takes_json_booleans(value):
    assert StrictBooleanField().run_validation(value) is value


@pytest.mark.parametrize("value", ["true", "false", "yes", 1, 0, "1", None])
def test_strict_boolean_refuses_what_drf_would_guess(value):
    with pytest.raises(serializers.ValidationError) as caught:
        StrictBooleanField().run_validation(value)
    expected = "This field may not be null." if value is None else "Must be a JSON boolean (true or false)."
    assert caught.value.detail == [expected]
