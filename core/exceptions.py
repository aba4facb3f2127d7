"""The one DRF exception handler that renders EasyPay's errors (CONTRACT section 2).

The error types are plain exceptions defined in ``core.errors`` (re-exported here).

Every error leaves the API as
``{"error": {"code", "message", "details"}, "request_id", "timestamp"}``; the renderer adds the
last two. Views and services raise these exceptions; none builds an error body by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from core.errors import (  # noqa: F401  (re-exported: the error types are imported from here too)
    APIKeyLimitReached,
    AuthenticationFailed,
    CardDeclined,
    EasyPayError,
    IdempotencyConflict,
    InvalidState,
    IPNotAllowed,
    NotFound,
    PermissionDenied,
    ProcessorError,
    RateLimited,
    RefundLimitExceeded,
    ServiceUnavailable,
    ValidationFailed,
)
from core.renderers import envelope_mark

logger = logging.getLogger("easypay.errors")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _flatten_validation(detail: Any) -> dict[str, Any]:
    """DRF's nested ValidationError detail -> ``{field: [messages]}`` (nested fields keep nesting)."""
    if isinstance(detail, dict):
        out: dict[str, Any] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            if isinstance(value, dict):
                out[name] = _flatten_validation(value)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                out[name] = [_flatten_validation(v) for v in value]
            elif isinstance(value, list):
                out[name] = [str(v) for v in value]
            else:
                out[name] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def _response(
    status_code: int, code: str, message: str, details: dict | None = None, headers: dict | None = None, data=None
):
    body = error_body(code, message, details)
    if data is not None:
        body["data"] = data
    response = Response(body, status=status_code, headers=headers)
    return envelope_mark(response)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every exception a view can raise to the contract's error envelope."""
    if isinstance(exc, EasyPayError):
        return _response(exc.status_code, exc.code, exc.message, exc.details, exc.headers, exc.data)
    if isinstance(exc, drf.ValidationError):
        return _response(400, "validation_error", "The request is invalid.", _flatten_validation(exc.detail))
    if isinstance(exc, DjangoValidationError):
        details = (
            {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"non_field_errors": [str(m) for m in exc.messages]}
        )
        return _response(400, "validation_error", "The request is invalid.", details)
    if isinstance(exc, drf.ParseError):
        return _response(400, "validation_error", "The request body is not valid JSON.", {"body": [str(exc.detail)]})
    if isinstance(exc, drf.UnsupportedMediaType):
        return _response(
            415,
            "unsupported_media_type",
            "Send the request body as JSON with Content-Type: application/json.",
            {"content_type": [str(exc.detail)]},
        )
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return _response(
            401,
            "authentication_failed",
            str(exc.detail),
            headers={"WWW-Authenticate": 'Bearer realm="api", ApiKey realm="api"'},
        )
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        detail = getattr(exc, "detail", None) or "You do not have permission to perform this action."
        return _response(403, "permission_denied", str(detail))
    if isinstance(exc, (drf.NotFound, Http404)):
        return _response(404, "not_found", "The requested resource does not exist.")
    if isinstance(exc, drf.MethodNotAllowed):
        return _response(405, "method_not_allowed", str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return _response(406, "not_acceptable", str(exc.detail))
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)  # type: ignore[attr-defined]  # DRF sets Throttled.wait; its stubs omit it
        return _response(429, "rate_limited", "Too many requests.", {"retry_after": wait}, {"Retry-After": str(wait)})
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable", exc_info=exc)
        return _response(503, "service_unavailable", "The database is temporarily unavailable.")
    if isinstance(exc, drf.APIException):
        return _response(exc.status_code, getattr(exc, "default_code", "error"), str(exc.detail))
    if isinstance(exc, DatabaseError):
        logger.exception("database error", exc_info=exc)
        return _response(500, "internal_error", "An unexpected error occurred.")
    logger.error("unhandled error", exc_info=exc)
    return _response(500, "internal_error", "An unexpected error occurred.")
