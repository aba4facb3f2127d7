"""Settings shared by every environment. Environment variables are read in `env.py` only."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from environ import Env

from .env import BASE_DIR, env_bool, env_float, env_int, env_int_map, env_list, env_str

email_url_config = Env.email_url_config

VERSION = "0.1.0"
API_VERSION = "v1"

DEV_SECRET_KEY = "django-insecure-easypay-dev-only-change-me"  # noqa: S105 (refused by production.py)
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
# Secrets of their own, so that rotating SECRET_KEY (sessions, CSRF, the admin) breaks no API key and
# no JWT. ``*_PREVIOUS``: the value being rotated out, still accepted for a window (README, operations).
# API keys verified under the previous hash key are re-hashed under the current one on use.
DEV_API_KEY_HASH_KEY = "easypay-dev-only-api-key-hash-key-change-me"  # refused by production.py
DEV_JWT_SIGNING_KEY = "easypay-dev-only-jwt-signing-key-change-me"  # refused by production.py
API_KEY_HASH_KEY = env_str("API_KEY_HASH_KEY") or DEV_API_KEY_HASH_KEY
API_KEY_HASH_KEY_PREVIOUS = env_str("API_KEY_HASH_KEY_PREVIOUS") or ""
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY") or DEV_JWT_SIGNING_KEY
JWT_SIGNING_KEY_PREVIOUS = env_str("JWT_SIGNING_KEY_PREVIOUS") or ""
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

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
    "core.middleware.SecurityHeadersMiddleware",
    "accounts.middleware.RateLimitHeadersMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
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

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 3)
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Streaming replicas (comma-separated URLs): aliases "replica1", "replica2", ... used only by reads that
# ask for one explicitly (core/replicas.py); the router sends every write and every unmarked read to
# "default". Unset: one database, exactly as before.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
for _index, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _replica = {**DATABASES["default"], **dj_database_url.parse(_url, conn_max_age=0)}
    _replica["ENGINE"] = DATABASES["default"]["ENGINE"]
    _replica["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    _replica["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_index}"] = _replica
DATABASE_ROUTERS = ["core.replicas.PrimaryReplicaRouter"]
# A replica whose replay is further behind the primary than this is skipped (seconds).
DATABASE_REPLICA_MAX_LAG_SECONDS = env_float("DATABASE_REPLICA_MAX_LAG_SECONDS", 5.0)
# How long one replica's replay position is reused before it is asked again (seconds).
DATABASE_REPLICA_LSN_CACHE_SECONDS = env_float("DATABASE_REPLICA_LSN_CACHE_SECONDS", 0.05)

# --- Cache and Redis ----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or None
# Redis with automatic failover: "host:port,host:port,..." of the Sentinels watching the master named
# REDIS_SENTINEL_MASTER. Then the cache, the rate limiter and the broker find the master through them
# (REDIS_URL's database number is kept; its host is not used).
REDIS_SENTINELS = [
    (_entry.rsplit(":", 1)[0], int(_entry.rsplit(":", 1)[1])) for _entry in env_list("REDIS_SENTINELS", [])
]
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER") or "easypay"
_redis_path = urlparse(REDIS_URL).path.strip("/") if REDIS_URL else ""
REDIS_DB = int(_redis_path) if _redis_path.isdigit() else 0
if REDIS_SENTINELS and not REDIS_URL:
    REDIS_URL = f"redis://{REDIS_SENTINEL_MASTER}/0"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                # A Redis outage degrades caching instead of failing requests.
                "IGNORE_EXCEPTIONS": True,
            },
            "KEY_PREFIX": "easypay",
        }
    }
    if REDIS_SENTINELS:
        # Only the master (a one-entry list): claims, leases and key versions must never be read from a
        # replica that has not caught up.
        CACHES["default"]["LOCATION"] = [f"redis://{REDIS_SENTINEL_MASTER}/{REDIS_DB}?is_master=1"]
        CACHES["default"]["OPTIONS"].update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": REDIS_SENTINELS,
                "SENTINEL_KWARGS": {"socket_timeout": 1, "socket_connect_timeout": 1},
            }
        )
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "easypay",
            "KEY_PREFIX": "easypay",
        }
    }

# --- Celery -------------------------------------------------------------------------------
_SENTINEL_URL = ";".join(f"sentinel://{host}:{port}/{REDIS_DB}" for host, port in REDIS_SENTINELS)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or _SENTINEL_URL or REDIS_URL
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or _SENTINEL_URL or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_BROKER_URL is None:
    # Tasks run eagerly, but Celery still opens a producer to check serializers: give it kombu's
    # in-process transport instead of an empty URL (which kombu reads as amqp://localhost, with a
    # "No hostname was supplied" warning on every task). Nothing is ever sent through it.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_RESULT_EXPIRES = 3600
# How long a task taken by a worker that died stays invisible before Redis hands it out again.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"socket_timeout": 1, "socket_connect_timeout": 1}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"master_name": REDIS_SENTINEL_MASTER}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# django-celery-beat's DatabaseScheduler behind a PostgreSQL advisory lock: a second beat started by
# mistake waits and schedules nothing while the first one lives; it beats the scheduler heartbeat.
CELERY_BEAT_SCHEDULER = "core.beat:SingleBeatScheduler"
# The scheduler (celery beat or run_schedule) records a heartbeat this often; /health/detailed and the
# easypay_scheduler_stale metric report it stale when it is older than SCHEDULER_HEARTBEAT_STALE_SECONDS.
SCHEDULER_HEARTBEAT_SECONDS = env_float("SCHEDULER_HEARTBEAT_SECONDS", 15.0)
SCHEDULER_HEARTBEAT_STALE_SECONDS = env_int("SCHEDULER_HEARTBEAT_STALE_SECONDS", 120)
# Subscriptions are billed daily at 06:00 UTC; a positive value bills every N seconds instead
# (the development settings use 60, so `make run` bills a due subscription within a minute or two).
SUBSCRIPTION_BILLING_EVERY_SECONDS = env_int("SUBSCRIPTION_BILLING_EVERY_SECONDS", 0)
# The beat schedule is code; `core.beat.sync_beat_schedule` loads it into django-celery-beat
# (after migrate) so staff can see and pause each entry in the admin.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "accounts.cleanup": {"task": "accounts.tasks.auth_cleanup", "schedule": crontab(hour=3, minute=0)},
    "payments.purge_idempotency_keys": {
        "task": "payments.tasks.idempotency_purge",
        "schedule": crontab(minute=15),
    },
    "payments.reconcile_pending": {"task": "payments.tasks.reconcile_pending", "schedule": timedelta(minutes=5)},
    "payments.sync_settlements": {"task": "payments.tasks.settlement_sync", "schedule": timedelta(minutes=30)},
    "payments.ledger_reconcile": {"task": "payments.tasks.ledger_reconcile", "schedule": crontab(hour=5, minute=30)},
    "subscriptions.bill_due": {
        "task": "subscriptions.tasks.bill_due_subscriptions",
        "schedule": (
            timedelta(seconds=SUBSCRIPTION_BILLING_EVERY_SECONDS)
            if SUBSCRIPTION_BILLING_EVERY_SECONDS > 0
            else crontab(hour=6, minute=0)
        ),
    },
    "audit.purge_old_rows": {"task": "audit.tasks.audit_purge", "schedule": crontab(hour=4, minute=0)},
}

# --- Auth, DRF, JWT -----------------------------------------------------------------------
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
AXES_FAILURE_LIMIT = env_int("STAFF_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STAFF_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.staff_auth.axes_client_ip"
AXES_WHITELIST_CALLABLE = "accounts.staff_auth.axes_not_admin"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_VERBOSE = False
# Second factors: required (production default) for staff who can refund, capture or void.
STAFF_OTP_REQUIRED = env_bool("STAFF_OTP_REQUIRED", False)
OTP_TOTP_ISSUER = "EasyPay"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # a device's key is shown once, by manage.py otp_enrol_totp

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.APIKeyAuthentication",
        "accounts.authentication.MerchantJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasScope"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,  # read per use by accounts.jwt (with JWT_SIGNING_KEY_PREVIOUS)
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "JTI_CLAIM": "jti",
    "TOKEN_TYPE_CLAIM": "token_type",
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "EasyPay API",
    "DESCRIPTION": "Payments, refunds, subscriptions and webhooks in front of Authorize.Net.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.envelope_responses",
        "core.schema.error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.models.Refund.Status",
        "APIKeyStatusEnum": "accounts.models.APIKey.Status",
        "SubscriptionStatusEnum": "subscriptions.models.Subscription.Status",
        "DeliveryStatusEnum": "webhooks.models.EventDelivery.Status",
        "InboundEventStatusEnum": "webhooks.models.InboundEvent.Status",
    },
}

# --- Money ----------------------------------------------------------------------------------
SUPPORTED_CURRENCIES = env_list("SUPPORTED_CURRENCIES", ["USD", "CAD", "EUR", "GBP", "AUD", "NZD", "JPY"])
PAYMENT_MAX_AMOUNT = env_str("PAYMENT_MAX_AMOUNT", "999999.99")
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
# After this long an in-progress key (its request died) may be taken over by a retry; 0 = derived
# from the processor timeouts.
IDEMPOTENCY_STALE_SECONDS = env_int("IDEMPOTENCY_STALE_SECONDS", 0)
# Payments: reconcile a pending payment (lost processor reply) after this many seconds; fail it when
# the processor still has no record of it after the grace period. GET /payments/{id} cache TTL.
PAYMENTS_RECONCILE_AFTER_SECONDS = env_int("PAYMENTS_RECONCILE_AFTER_SECONDS", 60)
PAYMENTS_RECONCILE_GRACE_SECONDS = env_int("PAYMENTS_RECONCILE_GRACE_SECONDS", 15 * 60)
PAYMENT_CACHE_SECONDS = env_int("PAYMENT_CACHE_SECONDS", 60)

# --- Authorize.Net --------------------------------------------------------------------------
DEFAULT_ANET_LOGIN_ID = "easypay-sandbox"
DEFAULT_ANET_SIGNATURE_KEY = (
    "EASYPAYSANDBOXSIGNATUREKEY"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
)
# Empty values count as unset: an empty signature key would accept any "signed" webhook.
AUTHORIZE_NET_API_LOGIN_ID = env_str("AUTHORIZE_NET_API_LOGIN_ID") or DEFAULT_ANET_LOGIN_ID
AUTHORIZE_NET_TRANSACTION_KEY = env_str("AUTHORIZE_NET_TRANSACTION_KEY") or "easypaysandbox16"
AUTHORIZE_NET_SIGNATURE_KEY = env_str("AUTHORIZE_NET_SIGNATURE_KEY") or DEFAULT_ANET_SIGNATURE_KEY
AUTHORIZE_NET_ENDPOINT = env_str("AUTHORIZE_NET_ENDPOINT", "http://127.0.0.1:8999/xml/v1/request.api")
# Names the processor account transaction ids belong to (unique per environment); empty: derived from
# the endpoint and the login id (payments.gateways.processor_environment).
AUTHORIZE_NET_ENVIRONMENT = env_str("AUTHORIZE_NET_ENVIRONMENT", "")
AUTHORIZE_NET_CONNECT_TIMEOUT = env_float("AUTHORIZE_NET_CONNECT_TIMEOUT", 3.0)
AUTHORIZE_NET_READ_TIMEOUT = env_float("AUTHORIZE_NET_READ_TIMEOUT", 15.0)
AUTHORIZE_NET_DUPLICATE_WINDOW = env_int("AUTHORIZE_NET_DUPLICATE_WINDOW", 0)
AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = env_int("AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD", 5)
AUTHORIZE_NET_CIRCUIT_RESET_SECONDS = env_float("AUTHORIZE_NET_CIRCUIT_RESET_SECONDS", 60.0)
AUTHORIZE_NET_CIRCUIT_REDIS_URL = env_str("AUTHORIZE_NET_CIRCUIT_REDIS_URL") or REDIS_URL

# --- Webhooks -------------------------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0)
# Outbound retries: seconds to wait after attempt 1, 2, ... (each +/-10% jitter); after the last, the
# delivery is `failed`. Default: 30 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h (8 attempts over about 27 h).
WEBHOOK_RETRY_SCHEDULE_SECONDS = [
    int(s) for s in env_list("WEBHOOK_RETRY_SCHEDULE_SECONDS", ["30", "300", "1800", "7200", "18000", "36000", "36000"])
]
# The back office counts a pending delivery as overdue (stuck) this long after its next attempt time.
WEBHOOK_OVERDUE_MARGIN_SECONDS = env_int("WEBHOOK_OVERDUE_MARGIN_SECONDS", 300)
WEBHOOK_SECRET_ROTATION_GRACE_HOURS = env_float("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", 24.0)
WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT = env_int("WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT", 16)
# Inbound (Authorize.Net): body size cap, forensic rows kept for bad signatures, processing retries.
WEBHOOK_INBOUND_MAX_BODY_BYTES = env_int("WEBHOOK_INBOUND_MAX_BODY_BYTES", 64 * 1024)
WEBHOOK_INBOUND_INVALID_BODY_BYTES = env_int("WEBHOOK_INBOUND_INVALID_BODY_BYTES", 2048)
WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR = env_int("WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR", 500)
WEBHOOK_INBOUND_INVALID_RETENTION_DAYS = env_int("WEBHOOK_INBOUND_INVALID_RETENTION_DAYS", 7)
WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS = [
    int(s) for s in env_list("WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS", ["30", "120", "600", "1800", "3600", "14400"])
]
# How often the scheduler looks for deliveries and inbound events whose retry is due. With a broker a retry
# is also enqueued with its countdown; without one (`make run`) this sweep alone sends it, so 20 s keeps
# the first retry (due 30 s after the failure) within a minute.
WEBHOOK_RETRY_POLL_SECONDS = env_int("WEBHOOK_RETRY_POLL_SECONDS", 20)
CELERY_BEAT_SCHEDULE.update(
    {
        "webhooks.retry_due_deliveries": {
            "task": "webhooks.tasks.deliveries_retry_due",
            "schedule": timedelta(seconds=WEBHOOK_RETRY_POLL_SECONDS),
        },
        "webhooks.retry_due_inbound": {
            "task": "webhooks.tasks.inbound_events_retry_due",
            "schedule": timedelta(seconds=WEBHOOK_RETRY_POLL_SECONDS),
        },
        "webhooks.purge_invalid_inbound": {
            "task": "webhooks.tasks.inbound_events_purge",
            "schedule": crontab(hour=4, minute=30),
        },
    }
)

# --- Subscriptions --------------------------------------------------------------------------
# Days from a declined renewal to the next try (one entry per retry); when they run out the
# subscription is cancelled. Hard declines (expired, invalid, lost or stolen card) are never retried.
SUBSCRIPTION_RETRY_DAYS = [int(d) for d in env_list("SUBSCRIPTION_RETRY_DAYS", ["1", "3", "5"])]
SUBSCRIPTION_HARD_DECLINE_REASON_CODES = env_list(
    "SUBSCRIPTION_HARD_DECLINE_REASON_CODES", ["6", "7", "8", "17", "28", "37", "315", "316", "317"]
)
# A billing attempt still pending after this long belongs to a crashed worker and is re-checked.
SUBSCRIPTION_STALE_ATTEMPT_MINUTES = env_int("SUBSCRIPTION_STALE_ATTEMPT_MINUTES", 15)

# --- Notifications (email over SMTP, SMS) -----------------------------------------------------
# EMAIL_URL: smtp://host:port, smtp+tls://user:password@host:587, smtp+ssl://... (django-environ's
# email URL syntax, also consolemail:// and filemail:///path). Unset: printed to the console.
EMAIL_URL = env_str("EMAIL_URL") or "consolemail://"
_email = email_url_config(EMAIL_URL)
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
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
# The envelope sender (MAIL FROM) and From address; merchants set the display name and reply-to.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "EasyPay <no-reply@easypay.local>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds to wait after failed attempt 1, 2, ... (+/-10% jitter) on a temporary failure (SMTP 4xx,
# connection refused, timeout); after the last, the notification is `failed`.
NOTIFICATION_RETRY_SCHEDULE_SECONDS = [
    int(s) for s in env_list("NOTIFICATION_RETRY_SCHEDULE_SECONDS", ["60", "300", "1800", "7200", "21600"])
]
# SMS: `console` (printed), `twilio` (TWILIO_* below) or `locmem` (kept in memory, tests).
SMS_BACKEND = env_str("SMS_BACKEND") or "console"
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID") or ""
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN") or ""
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER") or ""
# Where the Twilio client sends its requests (a local stand-in in tests); unset: Twilio's own API.
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL") or ""
TWILIO_TIMEOUT_SECONDS = env_float("TWILIO_TIMEOUT_SECONDS", 10.0)
# Alert a merchant when an endpoint's deliveries have all failed for this long.
NOTIFICATION_WEBHOOK_FAILING_HOURS = env_int("NOTIFICATION_WEBHOOK_FAILING_HOURS", 24)
# Warn about a subscription's stored card this many days before the month it expires ends.
NOTIFICATION_CARD_EXPIRING_DAYS = env_int("NOTIFICATION_CARD_EXPIRING_DAYS", 30)
CELERY_BEAT_SCHEDULE.update(
    {
        "notifications.retry_due": {
            "task": "notifications.tasks.notifications_send_due",
            "schedule": timedelta(minutes=1),
        },
        "notifications.daily": {
            "task": "notifications.tasks.notifications_daily",
            "schedule": crontab(hour=7, minute=0),
        },
        "notifications.webhook_failures": {
            "task": "notifications.tasks.webhook_failure_alerts",
            "schedule": crontab(minute=40),
        },
    }
)

# --- Edge, proxies, rate limits -------------------------------------------------------------
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)

# --- HTTP hardening -------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SESSION_COOKIE_HTTPONLY = True
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["config.formats"]  # compact ISO-like dates in the back office

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

PROMETHEUS_EXPORT_MIGRATIONS = False

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIDFilter"},
        "redact": {"()": "core.logging.RedactingFilter"},
    },
    "formatters": {"json": {"()": "core.logging.JSONFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs whole request XML (card numbers included) on errors: never let it through.
        "authorizenet.sdk": {"level": "CRITICAL", "propagate": False, "handlers": []},
        "pyxb": {"level": "ERROR"},
    },
}

# --- Audit trail and back office ------------------------------------------------------------
AUDIT_ENABLED = env_bool("AUDIT_ENABLED", True)
# False: rows are buffered in-process and bulk-inserted by a background thread (flushed at exit).
# Tests set it True for determinism; a row written inside an open transaction is always synchronous.
AUDIT_SYNC_WRITES = env_bool("AUDIT_SYNC_WRITES", False)
AUDIT_FLUSH_INTERVAL_SECONDS = env_float("AUDIT_FLUSH_INTERVAL_SECONDS", 1.0)
AUDIT_BATCH_SIZE = env_int("AUDIT_BATCH_SIZE", 200)
AUDIT_BUFFER_MAX_ROWS = env_int("AUDIT_BUFFER_MAX_ROWS", 10000)
AUDIT_MAX_PAYLOAD_BYTES = env_int("AUDIT_MAX_PAYLOAD_BYTES", 16384)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)
# The most staff without "refund_payment_unlimited" (the "support" group) may refund of one payment,
# all their refunds of it together, per currency in minor units (enforced by payments.services.
# refund_create). A currency not listed cannot be refunded by them. "USD:10000,JPY:10000,..."
STAFF_SUPPORT_REFUND_LIMITS = env_int_map(
    "STAFF_SUPPORT_REFUND_LIMITS",
    {"USD": 10_000, "CAD": 13_500, "EUR": 9_000, "GBP": 8_000, "AUD": 15_000, "NZD": 16_500, "JPY": 15_000},
)

# --- Accounts: rate limits, token brute-force guard (accounts/ratelimit.py) --------------------
# Counters live in this Redis (default REDIS_URL); unset -> the local cache (one process only).
RATE_LIMIT_REDIS_URL = env_str("RATE_LIMIT_REDIS_URL") or REDIS_URL
RATE_LIMIT_REDIS_TIMEOUT = env_float("RATE_LIMIT_REDIS_TIMEOUT", 0.5)
RATE_LIMIT_BREAKER_SECONDS = env_float("RATE_LIMIT_BREAKER_SECONDS", 5.0)
# The highest limits a key created or changed through the API may have (the create_api_key command,
# run by the operator, is not capped): merchants cannot mint themselves out of the platform's limits.
API_KEY_MAX_RATE_LIMITS = {
    "minute": env_int("API_KEY_MAX_RATE_LIMIT_PER_MINUTE", 60_000),
    "hour": env_int("API_KEY_MAX_RATE_LIMIT_PER_HOUR", 3_600_000),
    "day": env_int("API_KEY_MAX_RATE_LIMIT_PER_DAY", 86_400_000),
}
# All of a merchant's API keys and logins together (staff may set a merchant's own on its admin page),
# and the most active keys a merchant may have (idem; `manage.py create_api_key` is not capped).
MERCHANT_RATE_LIMITS = {
    "minute": env_int("MERCHANT_RATE_LIMIT_PER_MINUTE", 6_000),
    "hour": env_int("MERCHANT_RATE_LIMIT_PER_HOUR", 120_000),
    "day": env_int("MERCHANT_RATE_LIMIT_PER_DAY", 1_200_000),
}
# Load is bounded by the merchant's aggregate limit above; this bounds how many credentials it can hold.
API_KEY_MAX_ACTIVE_PER_MERCHANT = env_int("API_KEY_MAX_ACTIVE_PER_MERCHANT", 100)
# JWTs minted from a user's login (keys carry their own limits).
ACCOUNTS_USER_RATE_LIMITS = {
    "minute": env_int("USER_RATE_LIMIT_PER_MINUTE", 100),
    "hour": env_int("USER_RATE_LIMIT_PER_HOUR", 1000),
    "day": env_int("USER_RATE_LIMIT_PER_DAY", 10000),
}
# Failed POST /auth/tokens attempts before 429: per client IP and one credential (key_id or
# username), and per client IP over all credentials.
ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS = {
    "minute": env_int("TOKEN_CREDENTIAL_FAILURES_PER_MINUTE", 10),
    "hour": env_int("TOKEN_CREDENTIAL_FAILURES_PER_HOUR", 100),
}
ACCOUNTS_TOKEN_FAILURE_LIMITS = {
    "minute": env_int("TOKEN_FAILURES_PER_MINUTE", 60),
    "hour": env_int("TOKEN_FAILURES_PER_HOUR", 600),
}
