"""drf-spectacular extensions shared by every app (imported in ``CoreConfig.ready``)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension


class BlankableFormattedStringExtension(OpenApiSerializerFieldExtension):
    """A string field with a format (email, uri, ...) that also accepts ``""`` (``allow_blank=True``)
    is documented as "that format, or the empty string": ``format: email`` alone would call the
    accepted ``""`` (and a ``default: ""``) invalid, which fails OpenAPI validation and misleads
    generated clients."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if not (getattr(self.target, "allow_blank", False) and schema.get("type") == "string" and "format" in schema):
            return schema
        formatted = {"type": "string", "format": schema.pop("format")}
        max_length = getattr(self.target, "max_length", None)
        if max_length is not None:
            formatted["maxLength"] = max_length
        schema.pop("type")
        return {**schema, "anyOf": [formatted, {"type": "string", "maxLength": 0}]}
