"""Serializer helpers shared by the apps' API layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    # what a serializer mixin is mixed into, for the checker; at run time the mixin is a plain class
    SerializerMixinBase = serializers.Serializer
else:
    SerializerMixinBase = object


NOT_A_STRING = "Not a valid string."


def non_string_errors(fields, data) -> dict[str, list[str]]:
    """The text fields of ``data`` given a number or a boolean: DRF's ``CharField`` turns ``123`` into
    ``"123"``; the API's text fields take JSON strings only (as the schema says), so those are a 400
    naming the field. Every strict input serializer of the apps calls this before its fields run."""
    if not isinstance(data, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        field = fields.get(name)
        if isinstance(field, serializers.CharField) and value is not None and not isinstance(value, str):
            errors[name] = [NOT_A_STRING]
    return errors


class StrictInputMixin(SerializerMixinBase):
    """Unknown fields are a 400, not silently dropped (read-only fields echoed back are ignored); a
    text field given a number is a 400 too (:func:`non_string_errors`)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors = non_string_errors(self.fields, data)
            errors.update({name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))})
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
