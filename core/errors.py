"""EasyPay's domain errors: one hierarchy of plain exceptions, each with a stable ``code``.

Services, selectors and the HTTP layer raise these; ``core.exceptions.exception_handler`` (the
only place that knows DRF) maps every one to the contract's error envelope. This module imports
nothing of the HTTP layer, so a service raising an error stays free of it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class EasyPayError(Exception):
    """Base class: a stable machine-readable ``code``, a message and optional details.

    ``data`` is an object the error carries to the client (the stored payment of a decline);
    ``status_code`` is the HTTP status the contract gives the code, read by the one handler
    (``core.exceptions.exception_handler``) and by the admin's audit rows; nothing raises HTTP.
    """

    status_code = HTTPStatus.BAD_REQUEST
    code = "error"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details or {}
        self.data = data
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(EasyPayError):
    status_code = HTTPStatus.BAD_REQUEST
    code = "validation_error"
    message = "The request is invalid."


class AuthenticationFailed(EasyPayError):
    status_code = HTTPStatus.UNAUTHORIZED
    code = "authentication_failed"
    message = "Authentication credentials were missing or invalid."


class PermissionDenied(EasyPayError):
    status_code = HTTPStatus.FORBIDDEN
    code = "permission_denied"
    message = "This credential lacks the permission for this action."


class RefundLimitExceeded(PermissionDenied):
    code = "refund_limit_exceeded"
    message = "This refund is over what your role may refund on this payment."


class IPNotAllowed(EasyPayError):
    status_code = HTTPStatus.FORBIDDEN
    code = "ip_not_allowed"
    message = "Requests from this IP address are not allowed for this credential."


class CardDeclined(EasyPayError):
    status_code = HTTPStatus.PAYMENT_REQUIRED
    code = "card_declined"
    message = "The card was declined."


class NotFound(EasyPayError):
    status_code = HTTPStatus.NOT_FOUND
    code = "not_found"
    message = "The requested resource does not exist."


class InvalidState(EasyPayError):
    status_code = HTTPStatus.CONFLICT
    code = "invalid_state"
    message = "The resource is not in a state that allows this action."


class APIKeyLimitReached(EasyPayError):
    status_code = HTTPStatus.CONFLICT
    code = "api_key_limit_reached"
    message = "This merchant has as many active API keys as it may have; revoke one first."


class IdempotencyConflict(EasyPayError):
    status_code = HTTPStatus.CONFLICT
    code = "idempotency_conflict"
    message = "This Idempotency-Key was used with a different request."


class RateLimited(EasyPayError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    code = "rate_limited"
    message = "Too many requests."


class ProcessorError(EasyPayError):
    status_code = HTTPStatus.BAD_GATEWAY
    code = "processor_error"
    message = "The payment processor could not complete the request."


class ServiceUnavailable(EasyPayError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"
    message = "The service is temporarily unavailable."
