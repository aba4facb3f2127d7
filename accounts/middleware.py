"""Copies the rate-limit headers that authentication computed onto the response."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


class RateLimitHeadersMiddleware:
    """``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (and ``Retry-After`` on a 429) on every response to
    an authenticated API request, errors included. Authentication stores them on the Django request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        headers = getattr(request, "easypay_ratelimit_headers", None)
        if headers:
            for name, value in headers.items():
                if name == "Retry-After" and response.status_code != 429:
                    continue
                response[name] = value
        return response
