"""Serializer helpers shared by the apps' API layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    # what a serializer mixin is mixed into, for the checker; at run time the mixin is a plain class
    SerializerMixinBase = serializers.Serializer
else:
    SerializerMixinBase = object


class StrictInputMixin(SerializerMixinBase):
    """Unknown fields are a 400, not silently dropped (read-only fields echoed back are ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)
