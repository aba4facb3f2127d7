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


# --- Error responses and response headers, by operation kind ----------------------------------------

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error envelope every API error is sent in.",
    "required": ["error", "request_id", "timestamp"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": {}},
            },
        },
        "data": {"description": "The stored object the error concerns, where there is one (e.g. a declined payment)."},
        **ENVELOPE_FIELDS,
    },
}

# One description per status; an operation's own (more specific) response is never replaced.
ERROR_DESCRIPTIONS = {
    "400": "validation_error: a bad body, query or header; details name each bad field",
    "401": "authentication_failed: missing, invalid, expired or revoked credentials",
    "403": "permission_denied (the credential lacks the scope) or ip_not_allowed",
    "404": "not_found: unknown, another merchant's or malformed id",
    "409": "invalid_state (not allowed in the resource's state), idempotency_conflict or a duplicate",
    "413": "payload_too_large: the body is over the size limit",
    "415": "unsupported_media_type: send JSON with Content-Type: application/json",
    "429": "rate_limited: over a rate limit; Retry-After says when to try again",
    "503": "service_unavailable: a backend (database, processor circuit) is unavailable",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id (a sane client-sent X-Request-ID, else generated), as in the body.",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    },
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the tightest rate-limit window of the credential.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until that window resets.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer to an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses an operation of this kind can answer, whatever its view."""
    parameters = operation.get("parameters", [])
    has_path_id = any(p.get("in") == "path" for p in parameters)
    has_input = bool(parameters) or "requestBody" in operation or method != "get"
    writes = method in ("post", "put", "patch", "delete")
    idempotent = any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters)
    secured = any(requirement for requirement in operation.get("security", []))
    statuses = {"503"}
    if secured:
        statuses |= {"401", "403", "429"}
    elif path.startswith("/api/v1/auth/") or path.startswith("/api/v1/webhooks/"):
        statuses |= {"401", "429"}  # credentials or signatures checked in the view, failures throttled
    if has_input:
        statuses.add("400")
    if has_path_id:
        statuses.add("404")
    if (writes and has_path_id) or idempotent:
        statuses.add("409")
    if method in ("post", "put", "patch"):
        statuses |= {"413", "415"}
    return statuses


def error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Document, on every API operation, the error statuses its kind can answer (with the error
    envelope, one component) and the headers each response carries: X-Request-ID always, the
    rate-limit headers on authenticated requests, Retry-After on a 429, Idempotent-Replayed where an
    Idempotency-Key is accepted."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    components["headers"] = {name: dict(header) for name, header in HEADERS.items()}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            api = path.startswith("/api/v1/")
            for parameter in operation.get("parameters", []):
                # List filters and pagination treat an empty value as "not given" (django-filter and
                # the paginator skip it), so ``?created_before=`` is a valid request, not a bad date.
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
            if api:
                for status in sorted(_error_statuses(path, method, operation)):
                    responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
            secured = any(requirement for requirement in operation.get("security", []))
            idempotent = any(
                p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])
            )
            for status, response in responses.items():
                code = int(status) if str(status).isdigit() else 0
                if api and code >= 400:
                    response.setdefault("description", ERROR_DESCRIPTIONS.get(str(status), "error"))
                    media = response.setdefault("content", {}).setdefault("application/json", {})
                    if "properties" not in media.get("schema", {}) and "$ref" not in media.get("schema", {}):
                        media["schema"] = ERROR_REF  # a free-form object (or nothing) documented by a view
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Request-ID", _header_ref("X-Request-ID"))
                if secured and code != 401:
                    for name in RATE_LIMIT_HEADERS:
                        headers.setdefault(name, _header_ref(name))
                if code == 429:
                    headers.setdefault("Retry-After", _header_ref("Retry-After"))
                if idempotent:
                    headers.setdefault("Idempotent-Replayed", _header_ref("Idempotent-Replayed"))
    return result
