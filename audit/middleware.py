"""One audit row per API request (``/api/v1/...``).

Sits right after Django's ``AuthenticationMiddleware``. DRF authenticates inside the view; its
``Request.user`` setter also sets ``request.user`` on the Django request (``_request.user``), so once the
view has returned, ``request.user`` is the ``MerchantPrincipal`` of the API key or JWT (or ``None`` for
an unauthenticated call). The DRF view, its action and its URL kwargs come from the response's
``renderer_context``.
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .services import audit_api_request

logger = logging.getLogger("easypay.audit")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _prefix() -> str:
    return settings.AUDIT_PATH_PREFIX


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.AUDIT_ENABLED or not request.path.startswith(_prefix()):
            return self.get_response(request)
        started = time.monotonic()
        body = self._read_body(request)
        response = self.get_response(request)
        try:
            audit_api_request(
                request=request,
                response=response,
                body=body,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        except Exception:  # an audit failure never turns a served response into an error
            logger.exception("audit row for an API request could not be recorded")
        return response

    @staticmethod
    def _read_body(request: HttpRequest):
        """The parsed JSON body, read (and cached by Django) before the view so DRF can still parse it."""
        if request.method not in _BODY_METHODS:
            return None
        if "json" not in (request.content_type or ""):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length <= 0 or (limit is not None and length > limit):
            return None
        try:
            raw = request.body
        except Exception:  # RawPostDataException or a broken stream: audit without the body
            return None
        try:
            return json.loads(raw)
        except RecursionError:
            return {"_unparsed": f"<{len(raw)} bytes of JSON nested too deeply>"}
        except (ValueError, UnicodeDecodeError):
            return {"_unparsed": f"<{len(raw)} bytes of invalid JSON>"}
