"""Settings shared by every environment. Environment variables are read through
`components/env.py` (django-environ); each group of settings is declared once, here or in the
`components` module this file imports."""

from __future__ import annotations

from datetime import timedelta

from payments.gateways.emulator_credentials import (
    EMULATOR_API_LOGIN_ID,
    EMULATOR_SIGNATURE_KEY,
    EMULATOR_TRANSACTION_KEY,
)

from .components.api import *  # noqa: F403
from .components.database import *  # noqa: F403
from .components.database import REDIS_URL
from .components.env import BASE_DIR, env
from .components.keys import *  # noqa: F403
from .components.logs import *  # noqa: F403
from .components.security import *  # noqa: F403
from .components.tasks import *  # noqa: F403

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django_prometheus",
    "accounts.admin_apps.EasyPayAdminConfig",  # django.contrib.admin with staff lockout and second factors
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "accounts",
    "payments",
    "webhooks",
    "subscriptions",
    "audit",
    "notifications",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestIDMiddleware",
    "core.replicas.WritePositionMiddleware",
    # Security headers on every answer, the ones given by the middleware below included.
    "core.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.RateLimitHeadersMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # Django's session/CSRF/auth/messages/X-Frame-Options middleware, skipped for /api/v1/ (API key or
    # JWT only, no cookies) and unchanged for the admin and docs: see core/middleware.py.
    "core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.middleware.AuditMiddleware",
    # After the audit middleware: a request refused for its size still gets its audit row.
    "core.middleware.BodySizeLimitMiddleware",
    "core.middleware.MessageMiddleware",
    "core.middleware.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out admin login (429)
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Staff login: lockout (django-axes) and TOTP second factors (django-otp), see accounts/staff_auth.py
AUTHENTICATION_BACKENDS = [
    "accounts.staff_auth.StaffLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("STAFF_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("STAFF_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.staff_auth.axes_client_ip"
AXES_WHITELIST_CALLABLE = "accounts.staff_auth.axes_not_admin"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_VERBOSE = False
# Second factors: required (production default) for staff who can refund, capture or void.
STAFF_OTP_REQUIRED = env.bool("STAFF_OTP_REQUIRED", default=False)
OTP_TOTP_ISSUER = "EasyPay"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # a device's key is shown once, by manage.py otp_enrol_totp

# --- Money ----------------------------------------------------------------------------------
SUPPORTED_CURRENCIES = env.list("SUPPORTED_CURRENCIES", default=["USD", "CAD", "EUR", "GBP", "AUD", "NZD", "JPY"])
PAYMENT_MAX_AMOUNT = env.str("PAYMENT_MAX_AMOUNT", default="999999.99")
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# After this long an in-progress key (its request died) may be taken over by a retry; 0 = derived
# from the processor timeouts.
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=0)
# Payments: reconcile a pending payment (lost processor reply) after this many seconds; fail it when
# the processor still has no record of it after the grace period. GET /payments/{id} cache TTL.
PAYMENTS_RECONCILE_AFTER_SECONDS = env.int("PAYMENTS_RECONCILE_AFTER_SECONDS", default=60)
PAYMENTS_RECONCILE_GRACE_SECONDS = env.int("PAYMENTS_RECONCILE_GRACE_SECONDS", default=15 * 60)
PAYMENT_CACHE_SECONDS = env.int("PAYMENT_CACHE_SECONDS", default=60)
# How many pending payments one reconcile_pending run re-checks with the processor.
PAYMENTS_RECONCILE_BATCH_SIZE = 200
# settlement_sync checks captured, not yet settled payments created this many days back.
PAYMENTS_SETTLEMENT_LOOKBACK_DAYS = 30
# How many days of processor records ledger_reconcile compares with the ledger.
PAYMENTS_LEDGER_WINDOW_DAYS = 2

# --- Authorize.Net --------------------------------------------------------------------------
# Empty values count as unset: an empty signature key would accept any "signed" webhook.
AUTHORIZE_NET_API_LOGIN_ID = env.str("AUTHORIZE_NET_API_LOGIN_ID", default=None) or EMULATOR_API_LOGIN_ID
AUTHORIZE_NET_TRANSACTION_KEY = env.str("AUTHORIZE_NET_TRANSACTION_KEY", default=None) or EMULATOR_TRANSACTION_KEY
AUTHORIZE_NET_SIGNATURE_KEY = env.str("AUTHORIZE_NET_SIGNATURE_KEY", default=None) or EMULATOR_SIGNATURE_KEY
AUTHORIZE_NET_ENDPOINT = env.str("AUTHORIZE_NET_ENDPOINT", default="http://127.0.0.1:8999/xml/v1/request.api")
# Names the processor account transaction ids belong to (unique per environment); empty: derived from
# the endpoint and the login id (payments.gateways.processor_environment).
AUTHORIZE_NET_ENVIRONMENT = env.str("AUTHORIZE_NET_ENVIRONMENT", default="")
AUTHORIZE_NET_CONNECT_TIMEOUT = env.float("AUTHORIZE_NET_CONNECT_TIMEOUT", default=3.0)
AUTHORIZE_NET_READ_TIMEOUT = env.float("AUTHORIZE_NET_READ_TIMEOUT", default=15.0)
AUTHORIZE_NET_DUPLICATE_WINDOW = env.int("AUTHORIZE_NET_DUPLICATE_WINDOW", default=0)
AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = env.int("AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD", default=5)
AUTHORIZE_NET_CIRCUIT_RESET_SECONDS = env.float("AUTHORIZE_NET_CIRCUIT_RESET_SECONDS", default=60.0)
# How far back the processor's unsettled and settled lists are searched for a lost transaction (days).
AUTHORIZE_NET_RECONCILE_LOOKBACK_DAYS = 2.0
AUTHORIZE_NET_CIRCUIT_REDIS_URL = env.str("AUTHORIZE_NET_CIRCUIT_REDIS_URL", default=None) or REDIS_URL

# --- Webhooks -------------------------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Outbound retries: seconds to wait after attempt 1, 2, ... (each +/-10% jitter); after the last, the
# delivery is `failed`. Default: 30 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h (8 attempts over about 27 h).
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS", cast=int, default=[30, 300, 1800, 7200, 18000, 36000, 36000]
)
# The back office counts a pending delivery as overdue (stuck) this long after its next attempt time.
WEBHOOK_OVERDUE_MARGIN_SECONDS = env.int("WEBHOOK_OVERDUE_MARGIN_SECONDS", default=300)
WEBHOOK_SECRET_ROTATION_GRACE_HOURS = env.float("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", default=24.0)
WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT = env.int("WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT", default=16)
# Inbound (Authorize.Net): body size cap, forensic rows kept for bad signatures, processing retries.
WEBHOOK_INBOUND_MAX_BODY_BYTES = env.int("WEBHOOK_INBOUND_MAX_BODY_BYTES", default=64 * 1024)
WEBHOOK_INBOUND_INVALID_BODY_BYTES = env.int("WEBHOOK_INBOUND_INVALID_BODY_BYTES", default=2048)
WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR = env.int("WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR", default=500)
WEBHOOK_INBOUND_INVALID_RETENTION_DAYS = env.int("WEBHOOK_INBOUND_INVALID_RETENTION_DAYS", default=7)
WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS", cast=int, default=[30, 120, 600, 1800, 3600, 14400]
)

# --- Subscriptions --------------------------------------------------------------------------
# Days from a declined renewal to the next try (one entry per retry); when they run out the
# subscription is cancelled. Hard declines (expired, invalid, lost or stolen card) are never retried.
SUBSCRIPTION_RETRY_DAYS = env.list("SUBSCRIPTION_RETRY_DAYS", cast=int, default=[1, 3, 5])
SUBSCRIPTION_HARD_DECLINE_REASON_CODES = env.list(
    "SUBSCRIPTION_HARD_DECLINE_REASON_CODES", default=["6", "7", "8", "17", "28", "37", "315", "316", "317"]
)
# A billing attempt still pending after this long belongs to a crashed worker and is re-checked.
SUBSCRIPTION_STALE_ATTEMPT_MINUTES = env.int("SUBSCRIPTION_STALE_ATTEMPT_MINUTES", default=15)

# --- Notifications (email over SMTP, SMS) -----------------------------------------------------
# EMAIL_URL: smtp://host:port, smtp+tls://user:password@host:587, smtp+ssl://... (django-environ's
# email URL syntax, also consolemail:// and filemail:///path). Unset: printed to the console.
EMAIL_URL = env.str("EMAIL_URL", default=None) or "consolemail://"
_email = env.email_url_config(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(_email.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
if _email.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
# One SMTP conversation never blocks a worker for long: a timeout is a temporary failure, retried.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
# The envelope sender (MAIL FROM) and From address; merchants set the display name and reply-to.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=None) or "EasyPay <no-reply@easypay.local>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds to wait after failed attempt 1, 2, ... (+/-10% jitter) on a temporary failure (SMTP 4xx,
# connection refused, timeout); after the last, the notification is `failed`.
NOTIFICATION_RETRY_SCHEDULE_SECONDS = env.list(
    "NOTIFICATION_RETRY_SCHEDULE_SECONDS", cast=int, default=[60, 300, 1800, 7200, 21600]
)
# SMS: `console` (printed), `twilio` (TWILIO_* below) or `locmem` (kept in memory, tests).
SMS_BACKEND = env.str("SMS_BACKEND", default=None) or "console"
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default=None) or ""
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default=None) or ""
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default=None) or ""
# Where the Twilio client sends its requests (a local stand-in in tests); unset: Twilio's own API.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default=None) or ""
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)
# Alert a merchant when an endpoint's deliveries have all failed for this long.
NOTIFICATION_WEBHOOK_FAILING_HOURS = env.int("NOTIFICATION_WEBHOOK_FAILING_HOURS", default=24)
# Warn about a subscription's stored card this many days before the month it expires ends.
NOTIFICATION_CARD_EXPIRING_DAYS = env.int("NOTIFICATION_CARD_EXPIRING_DAYS", default=30)

# --- Edge, proxies, rate limits -------------------------------------------------------------
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["config.formats"]  # compact ISO-like dates in the back office

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Audit trail and back office ------------------------------------------------------------
AUDIT_ENABLED = env.bool("AUDIT_ENABLED", default=True)
# Requests under this path are audited (audit/middleware.py).
AUDIT_PATH_PREFIX = "/api/v1/"
# False: rows are buffered in-process and bulk-inserted by a background thread (flushed at exit).
# Tests set it True for determinism; a row written inside an open transaction is always synchronous.
AUDIT_SYNC_WRITES = env.bool("AUDIT_SYNC_WRITES", default=False)
AUDIT_FLUSH_INTERVAL_SECONDS = env.float("AUDIT_FLUSH_INTERVAL_SECONDS", default=1.0)
AUDIT_BATCH_SIZE = env.int("AUDIT_BATCH_SIZE", default=200)
AUDIT_BUFFER_MAX_ROWS = env.int("AUDIT_BUFFER_MAX_ROWS", default=10000)
AUDIT_MAX_PAYLOAD_BYTES = env.int("AUDIT_MAX_PAYLOAD_BYTES", default=16384)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
# The most staff without "refund_payment_unlimited" (the "support" group) may refund of one payment,
# all their refunds of it together, per currency in minor units (enforced by payments.services.
# refund_create). A currency not listed cannot be refunded by them. "USD:10000,JPY:10000,..."
STAFF_SUPPORT_REFUND_LIMITS = env.int_map(
    "STAFF_SUPPORT_REFUND_LIMITS",
    default={"USD": 10_000, "CAD": 13_500, "EUR": 9_000, "GBP": 8_000, "AUD": 15_000, "NZD": 16_500, "JPY": 15_000},
)

# --- Accounts: rate limits, token brute-force guard (accounts/ratelimit.py) --------------------
# Counters live in this Redis (default REDIS_URL); unset -> the local cache (one process only).
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default=None) or REDIS_URL
RATE_LIMIT_REDIS_TIMEOUT = env.float("RATE_LIMIT_REDIS_TIMEOUT", default=0.5)
RATE_LIMIT_BREAKER_SECONDS = env.float("RATE_LIMIT_BREAKER_SECONDS", default=5.0)
# The highest limits a key created or changed through the API may have (the create_api_key command,
# run by the operator, is not capped): merchants cannot mint themselves out of the platform's limits.
API_KEY_MAX_RATE_LIMITS = {
    "minute": env.int("API_KEY_MAX_RATE_LIMIT_PER_MINUTE", default=60_000),
    "hour": env.int("API_KEY_MAX_RATE_LIMIT_PER_HOUR", default=3_600_000),
    "day": env.int("API_KEY_MAX_RATE_LIMIT_PER_DAY", default=86_400_000),
}
# All of a merchant's API keys and logins together (staff may set a merchant's own on its admin page),
# and the most active keys a merchant may have (idem; `manage.py create_api_key` is not capped).
MERCHANT_RATE_LIMITS = {
    "minute": env.int("MERCHANT_RATE_LIMIT_PER_MINUTE", default=6_000),
    "hour": env.int("MERCHANT_RATE_LIMIT_PER_HOUR", default=120_000),
    "day": env.int("MERCHANT_RATE_LIMIT_PER_DAY", default=1_200_000),
}
# Load is bounded by the merchant's aggregate limit above; this bounds how many credentials it can hold.
API_KEY_MAX_ACTIVE_PER_MERCHANT = env.int("API_KEY_MAX_ACTIVE_PER_MERCHANT", default=100)
# JWTs minted from a user's login (keys carry their own limits).
ACCOUNTS_USER_RATE_LIMITS = {
    "minute": env.int("USER_RATE_LIMIT_PER_MINUTE", default=100),
    "hour": env.int("USER_RATE_LIMIT_PER_HOUR", default=1000),
    "day": env.int("USER_RATE_LIMIT_PER_DAY", default=10000),
}
# Failed POST /auth/tokens attempts before 429: per client IP and one credential (key_id or
# username), and per client IP over all credentials.
ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS = {
    "minute": env.int("TOKEN_CREDENTIAL_FAILURES_PER_MINUTE", default=10),
    "hour": env.int("TOKEN_CREDENTIAL_FAILURES_PER_HOUR", default=100),
}
ACCOUNTS_TOKEN_FAILURE_LIMITS = {
    "minute": env.int("TOKEN_FAILURES_PER_MINUTE", default=60),
    "hour": env.int("TOKEN_FAILURES_PER_HOUR", default=600),
}
