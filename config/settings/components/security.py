"""HTTP hardening: request limits, the security headers (Django's SecurityMiddleware and
core.middleware.SecurityHeadersMiddleware), cookies and CORS."""

from __future__ import annotations

from .env import env

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# The deepest JSON body the API parses (core/parsers.py).
API_JSON_MAX_DEPTH = 32

# Django's SecurityMiddleware: nosniff, Referrer-Policy, Cross-Origin-Opener-Policy and, over TLS only,
# Strict-Transport-Security (SECURE_HSTS_SECONDS=0 turns it off).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
X_FRAME_OPTIONS = "DENY"
# Sent by core.middleware.SecurityHeadersMiddleware: the API's CSP, and the one of the pages (the admin
# and Swagger UI need their own scripts/styles, and Swagger UI inline bootstrapping).
SECURITY_CSP_API = "default-src 'none'; frame-ancestors 'none'"
SECURITY_CSP_PAGES = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)
SECURITY_PERMISSIONS_POLICY = "geolocation=(), microphone=(), camera=(), payment=()"
SESSION_COOKIE_HTTPONLY = True

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-api-key",
    "x-request-id",
]
CORS_EXPOSE_HEADERS = [
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "idempotent-replayed",
]
