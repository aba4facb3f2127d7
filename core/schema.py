"""drf-spectacular post-processing: document the response envelope the renderer really sends."""

from __future__ import annotations

from typing import Any

ENVELOPE_FIELDS = {
    "request_id": {"type": "string", "example": "req_3f9a0c1d2b4e5f6071829304"},
    "timestamp": {"type": "string", "format": "date-time"},
}


def _is_enveloped(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    properties = schema.get("properties", {})
    return ("data" in properties and "request_id" in properties) or "pagination" in properties


def envelope_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Wrap every documented 2xx JSON body as ``{"data": <body>, "request_id", "timestamp"}``
    (paginated lists already carry theirs), so the schema matches what clients receive."""
    components = result.get("components", {}).get("schemas", {})
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith("2") or str(status) == "204":
                    continue
                media = response.get("content", {}).get("application/json")
                if not media or "schema" not in media or _is_enveloped(media["schema"], components):
                    continue
                media["schema"] = {
                    "type": "object",
                    "required": ["data", "request_id", "timestamp"],
                    "properties": {"data": media["schema"], **ENVELOPE_FIELDS},
                }
    return result
