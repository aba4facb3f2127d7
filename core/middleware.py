"""Request id, body-size guard and the security headers Django does not send; browser-only middleware
that the API skips."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import middleware as _auth
from django.contrib.messages import middleware as _messages
from django.contrib.sessions import middleware as _session
from django.http import HttpRequest, HttpResponse
from django.middleware import clickjacking as _clickjacking
from django.middleware import csrf as _csrf

from .context import new_request_id, request_id_var, sane_request_id
from .exceptions import error_body
from .renderers import utc_timestamp


def json_error_response(request: HttpRequest, status: int, code: str, message: str, details=None) -> HttpResponse:
    body = error_body(code, message, details)
    body["request_id"] = getattr(request, "request_id", None) or new_request_id()
    body["timestamp"] = utc_timestamp()
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


class RequestIDMiddleware:
    """Gives each request an id (a sane client-sent X-Request-ID, else ``req_<hex>``) and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = sane_request_id(request.headers.get("X-Request-ID")) or new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]  # our attribute on Django's request, read by views
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


class BodySizeLimitMiddleware:
    """Refuses over-large bodies (413) and unreadable ``Content-Length`` headers (400) before
    anything reads them. It sits after the audit middleware, so a refused request is audited too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self._guard_body(request) or self.get_response(request)

    @staticmethod
    def _guard_body(request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error_response(request, 400, "validation_error", "Invalid Content-Length header.")
        if limit is not None and length > limit:
            return json_error_response(
                request,
                413,
                "payload_too_large",
                f"The request body is larger than {limit} bytes.",
                {"body": [f"At most {limit} bytes are accepted."]},
            )
        return None


class SecurityHeadersMiddleware:
    """The headers Django's SecurityMiddleware (right inside this one) does not send.

    Django sends nosniff, Referrer-Policy, Cross-Origin-Opener-Policy and HSTS (SECURE_* settings).
    Kept here: the Content-Security-Policy, one for the API and one for the pages, by path. django-csp
    would do it, but its 4.0 builds the header from a set, so the directives come out in a different
    order in each process (PYTHONHASHSEED); the policies are two fixed strings (SECURITY_CSP_*), sent
    as written. Permissions-Policy, which neither covers. X-Frame-Options for every response: Django's
    XFrameOptionsMiddleware is skipped for cookie-less API calls (below) and never sees answers given by
    the middleware outside it. ``Cache-Control: no-store`` on API answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        response.setdefault("Permissions-Policy", settings.SECURITY_PERMISSIONS_POLICY)
        path = request.path
        is_page = path.startswith("/admin") or path.startswith("/api/docs") or path.startswith("/static")
        response.setdefault(
            "Content-Security-Policy", settings.SECURITY_CSP_PAGES if is_page else settings.SECURITY_CSP_API
        )
        if path.startswith("/api/") and not is_page:
            response.setdefault("Cache-Control", "no-store")
        return response


# --- Browser-only middleware, skipped for cookie-less API calls ----------------------------------
# An /api/v1/ request without a session cookie is a machine client (API key or JWT): for it Django's
# session, CSRF, auth, messages and X-Frame-Options middleware provably do nothing (an empty session,
# an anonymous user that DRF replaces, DRF views are CSRF-exempt and DRF's SessionAuthentication checks
# CSRF itself, no messages, and SecurityHeadersMiddleware already sends X-Frame-Options: DENY), yet cost
# CPU on every call. These subclasses skip exactly those requests; a request carrying a session cookie
# (staff using the session-authenticated Authorize.Net tools under /api/v1/webhooks/) and every other
# path (the admin, /api/docs, /api/schema) go through Django's middleware unchanged, in the same
# places. Being subclasses, they still satisfy the admin's system checks.

API_PATH_PREFIX = "/api/v1/"


def _cookieless_api_call(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PATH_PREFIX) and settings.SESSION_COOKIE_NAME not in request.COOKIES


class _BrowserOnly:
    get_response: Any

    def __call__(self, request: HttpRequest):
        if _cookieless_api_call(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_BrowserOnly, _session.SessionMiddleware):
    pass


class CsrfViewMiddleware(_BrowserOnly, _csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, _auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _messages.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_BrowserOnly, _clickjacking.XFrameOptionsMiddleware):
    pass
