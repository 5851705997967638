"""Studio settings. Every setting that comes from the environment is read here and nowhere else.

The defaults run a development site with nothing installed (SQLite, in-memory channel layer).
Production mode (DJANGO_DEBUG=0) refuses to start without a real secret key and encryption key.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# `make run` users keep their configuration in .env; the test suite sets DJANGO_DOTENV=0 so a
# developer's .env cannot point tests at a real relay or database.
if os.environ.get("DJANGO_DOTENV", "1") != "0":
    load_dotenv(BASE_DIR / ".env", override=False)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate limit "EVENTS/PERIOD" as (events, seconds): "30/60", "5/15m", "100/1h"; "off"
    or "0" turns it off (0 events)."""
    value = os.environ.get(name, "").strip().lower() or default
    if value in {"off", "0", "none"}:
        return (0, 1)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        events, period = value.split("/")
        unit = units.get(period[-1:], 1)
        seconds = int(period[:-1] if period[-1:] in units else period) * unit
        if int(events) < 0 or seconds <= 0:
            raise ValueError
        return (int(events), seconds)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f'{name} must look like "30/60" or "5/15m" (events / seconds, m, h or d), or "off"'
        ) from exc


DEBUG = env_bool("DJANGO_DEBUG", True)

DEV_SECRET_KEY = "django-insecure-studio-development-key-do-not-use-in-production"  # noqa: S105 - refused in production below
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip() or DEV_SECRET_KEY

# Fernet keys for relay API keys at rest. Comma-separated: the first encrypts, all decrypt, so a
# key can be rotated with `manage.py rotate_encryption_key` (see README).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    # Development only: derived from the (development) secret key so nothing needs configuring.
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

if not DEBUG:
    if (
        SECRET_KEY == DEV_SECRET_KEY
        or SECRET_KEY.startswith("django-insecure")
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
    ):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a long random value when DJANGO_DEBUG is off "
            "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
        )
    if not FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be set when DJANGO_DEBUG is off "
            "(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_tasks_db",
    "studio",
    "studio.accounts",
    "studio.ratelimit",
    "chat",
    "media_jobs",
    "playground",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "studio.accounts.middleware.UserLanguageMiddleware",
    "studio.accounts.middleware.AuditOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite (WAL, IMMEDIATE transactions, busy timeout) unless DATABASE_URL is set.
DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR", BASE_DIR / "var"))
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "studio.sqlite3"),
            # Keep connections: database_sync_to_async closes "old" ones around every call, and
            # reopening SQLite (with its PRAGMAs) costs milliseconds on the chat send path.
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: in memory for one web process; Redis when REDIS_URL is set (scaled mode).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
# redis-py's defaults do not suit channels-redis: reads time out after 5 s, the very time it
# blocks in BZPOPMIN waiting for a socket's next frame (on a busy machine an idle websocket was
# closed with 1011), and a pool holds 100 connections, fewer than a burst of replies sends
# frames at once (MaxConnectionsError: a reply's last frames lost).
CHANNEL_REDIS_HOST = {"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [CHANNEL_REDIS_HOST], "capacity": 1000},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "studio.channel_layer.InProcessChannelLayer",
            # Room for bursts to a slow socket; a dropped frame shows as a seq gap and resumes.
            "CONFIG": {"capacity": 1000},
        }
    }

# How long a resuming socket waits for the process that owns a generation to answer before it
# takes the database row as the truth (the generation has ended or its process died).
CHAT_OWNER_TIMEOUT = float(os.environ.get("CHAT_OWNER_TIMEOUT", "0.5"))

# Form posts without files (e.g. a Vary Region mask as a data URI, checked to <= 5 MB by its form)
# may be bigger than Django's 2.5 MB default; uploads are limited by each form.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# Background tasks: core django.tasks on the django-tasks-db backend (same database as the jobs).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# The worker records a heartbeat this often; /healthz calls it dead after WORKER_STALE_SECONDS.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_SECONDS", "10"))
WORKER_STALE_SECONDS = float(os.environ.get("WORKER_STALE_SECONDS", "60"))
# Every worker looks this often for jobs whose task died with another worker (killed mid-task)
# and re-enqueues those whose step is overdue by more than JOBS_STALL_MARGIN_SECONDS.
JOBS_SWEEP_SECONDS = float(os.environ.get("JOBS_SWEEP_SECONDS", "30"))
JOBS_STALL_MARGIN_SECONDS = float(os.environ.get("JOBS_STALL_MARGIN_SECONDS", "60"))
# A job whose submit started longer ago than this without an answer recorded belongs to a worker
# that died mid-submit: it fails as "interrupted" (never re-sent: the relay may have it). Must be
# longer than any submit can take (the longest relay timeout is 300 s).
JOBS_SUBMIT_GRACE_SECONDS = float(os.environ.get("JOBS_SUBMIT_GRACE_SECONDS", "360"))

# Rate limits, "EVENTS/PERIOD" (see env_rate), counted on Redis when REDIS_URL is set, in the
# database otherwise. Chat counts sends, regenerations and edits; jobs count submissions; sign-in
# counts failed attempts per typed username and per client address (IPv6 per /64).
RATELIMIT_CHAT = env_rate("RATELIMIT_CHAT", "30/60")
RATELIMIT_JOBS = env_rate("RATELIMIT_JOBS", "20/60")
RATELIMIT_LOGIN_USERNAME = env_rate("RATELIMIT_LOGIN_USERNAME", "5/15m")
RATELIMIT_LOGIN_IP = env_rate("RATELIMIT_LOGIN_IP", "30/15m")
RATELIMIT_EXEMPT_STAFF = env_bool("RATELIMIT_EXEMPT_STAFF", False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TZ", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
# In development WhiteNoise serves straight from the source folders (no collectstatic needed).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = None  # assets are served only through authorising views, never as public files
# Behind nginx: the URL prefix of an `internal` location aliased to MEDIA_ROOT (e.g.
# "/protected-media/"). The view still checks the owner, then answers with an empty response and
# an X-Accel-Redirect header so that nginx sends the file. Empty: the view streams it itself.
ASSETS_X_ACCEL_REDIRECT = os.environ.get("ASSETS_X_ACCEL_REDIRECT", "").strip()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "studio.storage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# The relay. UPSTREAM_BASE_URL is the site's default relay; users pick among
# UPSTREAM_ALLOWED_BASE_URLS (the default is always allowed) and never type a URL themselves.
UPSTREAM_BASE_URL = os.environ.get("UPSTREAM_BASE_URL", "").strip().rstrip("/")
UPSTREAM_API_KEY = os.environ.get("UPSTREAM_API_KEY", "").strip()
UPSTREAM_ALLOWED_BASE_URLS = list(
    dict.fromkeys(
        [url.rstrip("/") for url in [UPSTREAM_BASE_URL, *env_list("UPSTREAM_ALLOWED_BASE_URLS")]]
        if UPSTREAM_BASE_URL
        else [url.rstrip("/") for url in env_list("UPSTREAM_ALLOWED_BASE_URLS")]
    )
)
# Staff set per-user quotas on /staff/; staff themselves are held to theirs only when this is off.
QUOTAS_EXEMPT_STAFF = env_bool("QUOTAS_EXEMPT_STAFF", True)
# How long a one-time invite link (/accounts/invite/<token>/) stays valid.
INVITE_EXPIRY_DAYS = int(os.environ.get("INVITE_EXPIRY_DAYS", "7"))
# Relay families (studio.upstream.families) shown to users until staff switch one on or off on
# /staff/families/: "all", or a comma-separated list such as "openai,midjourney" (what the
# YIAPI relay enables today).
UPSTREAM_FAMILIES_ENABLED = env_list("UPSTREAM_FAMILIES_ENABLED", "all")
# Per-endpoint path overrides, JSON: {"mj_imagine": "/mj-relax/mj/submit/imagine", ...}.
try:
    UPSTREAM_PATHS: dict[str, str] = json.loads(os.environ.get("UPSTREAM_PATHS", "") or "{}")
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"UPSTREAM_PATHS is not valid JSON: {exc}") from exc

# Security. Production gets HTTPS-only cookies, HSTS and SSL redirect (check --deploy clean);
# behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=1.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy: scripts only from us, with a per-response nonce for the few inline
# ones; no 'unsafe-inline' for scripts. Images may be data:/blob: (previews, generated media).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "media-src": [CSP.SELF, "blob:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
