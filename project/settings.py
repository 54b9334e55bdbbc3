"""Settings for every environment, read from the process environment (see .env.sample)."""

import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from project.environment import Environment

BASE_DIR = Path(__file__).resolve().parent.parent

env = Environment()
# The most a number setting may be: far past any use, and short of where a request would fail
# with a 500 (a date past the year 9999, a float out of range, an integer past PostgreSQL's bigint).
YEAR_SECONDS = 365 * 24 * 60 * 60
THOUSAND_YEARS_DAYS = 1000 * 365
MOST_COUNTED = 2**63 - 1

# Public on purpose: it only ever signs development data, and production refuses it below.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"  # noqa: S105
# The placeholder of .env.sample: copied verbatim it would let anyone sign access tokens.
SAMPLE_SECRET_KEY = "change-me-to-a-long-random-string-of-50-characters-or-more"  # noqa: S105

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY: the development key is public.")
if not DEBUG and SECRET_KEY == SAMPLE_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY in .env: the key of .env.sample is public.")
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # Django's own measure (its deploy check's security.W009), which check --deploy must pass.
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters, of at least 5 different ones, and not django-insecure-."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# A browser app reads how long a 429 asks it to wait; scripts see no other header unless named here.
CORS_EXPOSE_HEADERS = ["Retry-After"]

INSTALLED_APPS = [
    "accounts",  # first: its createsuperuser (phones in any written form) replaces Django's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "referrals",
]

MIDDLEWARE = [
    "project.health.HealthProbeMiddleware",  # before anything checks the Host header
    "project.https.PermanentRedirectKeepsMethodMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # above the body limit, so a 413 carries CORS headers too
    "project.api_caching.NoStoreMiddleware",  # above the body limit, so its refusals are not stored either
    "project.languages.AcceptLanguageMiddleware",  # above the body limit too: its refusals speak Russian
    "project.request_limits.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "project.form_limits.FormFieldLimitMiddleware",  # after the user is known; runs before the CSRF check reads a form
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The benchmark serves its reference views (ceiling, floor) through bench.urls; nothing else sets this.
ROOT_URLCONF = env("ROOT_URLCONF", default="project.urls")
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "project" / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every transaction take the write lock up front, so concurrent
    # writers queue for `timeout` seconds instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A file, not the shared in-memory default, so tests see SQLite's real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
    DATABASE_PREPARED_STATEMENTS = False
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60, minimum=0, maximum=YEAR_SECONDS)
    # Off: a SELECT 1 round trip on every request would only spare each worker one JSON 503
    # (service_unavailable) after a database restart; the broken connection is then replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    # The hottest reads run as server-side prepared statements (project/prepared_statements.py).
    # Off behind a pooler that hands one session to many clients (PgBouncer in transaction mode),
    # and by default when connections last one request (CONN_MAX_AGE=0): preparing would not pay.
    DATABASE_PREPARED_STATEMENTS = env.bool(
        "DATABASE_PREPARED_STATEMENTS", default=DATABASES["default"]["CONN_MAX_AGE"] != 0
    )
    # A database that is down answers /readyz and the API with 503 in seconds, not after the OS gives up.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5, minimum=1, maximum=24 * 60 * 60)
    )

REDIS_URL = env("REDIS_URL", default="")
# The per-IP limits count in Redis when REDIS_URL is set, else in the database
# (accounts/rate_limits.py); the cache is shared by every worker and process either way.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            "OPTIONS": {"MAX_ENTRIES": 200_000},
        }
    }

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "project" / "static"]
# Hashed, compressed names once collectstatic has run (the image does at build time); before
# that (tests, `make run`, a checkout) plain names, served by whitenoise from the app folders.
COLLECTED = not DEBUG and ((STATIC_ROOT / "staticfiles.json").exists() or sys.argv[1:2] == ["collectstatic"])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not COLLECTED
# Before collectstatic the folder is missing and whitenoise serves from the apps' folders: its warning
# about it (once per worker) would be the only line on stdout that is not the log's JSON.
warnings.filterwarnings("ignore", message=f"No directory at: {re.escape(str(STATIC_ROOT))}")
WHITENOISE_MANIFEST_STRICT = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Largest POST, PUT or PATCH body accepted under /api/; larger ones get 413 before any parsing.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024, minimum=1024)
# Forms are the admin's only (the API reads JSON, bounded above): its delete confirmation posts back
# every selected id, so "select all" past 1,000 users failed with 400. The form body stays bounded by
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), about 100,000 ids. Only staff get past Django's 1,000
# (project.form_limits): the CSRF check reads anyone's form, and 100,000 fields take a second or two.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100_000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["project.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["project.renderers.FastJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "project.negotiation.JSONOnlyNegotiation",
    "DEFAULT_SCHEMA_CLASS": "project.schema.AutoSchema",
    "EXCEPTION_HANDLER": "project.exception_handler.envelope_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Client IP from REMOTE_ADDR unless a proxy in front is declared; X-Forwarded-For is
    # otherwise set by the client and would let anyone pick their own throttle bucket.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0, minimum=0),
}

JWT_SIGNING_KEY = env("JWT_SIGNING_KEY", default=SECRET_KEY)
if not DEBUG and (JWT_SIGNING_KEY in (DEV_SECRET_KEY, SAMPLE_SECRET_KEY) or len(JWT_SIGNING_KEY) < 32):
    raise ImproperlyConfigured("JWT_SIGNING_KEY must be at least 32 characters and not a public key.")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env.int("JWT_ACCESS_MINUTES", default=15, minimum=1, maximum=THOUSAND_YEARS_DAYS * 24 * 60)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        days=env.int("JWT_REFRESH_DAYS", default=30, minimum=1, maximum=THOUSAND_YEARS_DAYS)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_USER_CLASS": "accounts.authentication.AccessTokenUser",
}

API_DESCRIPTION = """\
Sign in with a phone number and a one-time SMS code; invite codes and referrals.

## Signing in

1. `POST /api/v1/auth/code/` with `{"phone": "+7 911 000-00-00"}`: a 4-digit code goes to the phone by SMS.
   Phones are accepted in the usual written forms and returned in E.164 (`+79110000000`).
2. `POST /api/v1/auth/token/` with the phone and the code: the reply has a JWT `access` token (15 minutes),
   a `refresh` token (30 days) and the profile. The first successful sign-in creates the account.
3. Send `Authorization: Bearer <access>` on every authenticated call.
4. `POST /api/v1/auth/token/refresh/` with the refresh token returns a new pair; the old refresh token stops
   working. `POST /api/v1/auth/logout/` revokes a refresh token.

## Limits (defaults; each is a server setting)

- A code lives 5 minutes, is single use, and a new code replaces the previous one.
- 5 wrong attempts kill a code (`code_expired`); after 10 wrong codes in 24 hours (two codes' worth) the
  phone can neither check codes nor get new ones until the window passes (429 `throttled`). A check when
  there is no live code (never sent, expired, used, or killed by its wrong attempts) is refused
  (`code_expired`) but not counted.
- A new code for the same phone at most every 60 seconds, 5 per hour and 10 per 24 hours (429 `throttled`);
  the code request's reply says in `retry_after` when the next one may be asked for.
- Each sign-in endpoint and the invite code lookup allow 30 requests per minute per client IP.
- Codes go only to phones of the allowed countries (Russia by default; `phone_region_not_allowed`).
- Every 429 reply carries `Retry-After` (seconds), and its `detail` says the wait in words.

## Invite codes

Everyone gets a 6-character invite code (digits and upper-case letters without 0/O, 1/I/L; input is
case-insensitive). A user may activate one other person's code, once, never their own, and never one that
would make the invitations loop back (`invite_cycle`).

## Errors

Every error reply is JSON `{"code", "detail"}`: `code` is a stable snake_case string for programs, `detail`
a sentence for people. Validation errors add `errors`: field name -> list of messages. When the only failing
field has a specific code (`invalid_phone`, `invalid_code`), that is the top-level `code`; otherwise it is
`invalid`. Request bodies larger than 64 KiB get 413 `request_too_large`; bodies that are not JSON get 415
`unsupported_media_type` or 400 `parse_error`.

## Languages

`detail` and field messages are in English or Russian, chosen by the `Accept-Language` header (`en`, `ru`);
`code` never changes with the language.
"""

SPECTACULAR_SETTINGS = {
    "TITLE": "Phone sign-in and referrals API",
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: Swagger UI would fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "TAGS": [
        {"name": "auth", "description": "Signing in by SMS code; JWT refresh and sign-out."},
        {"name": "profile", "description": "The signed-in user: profile, names, invite code activation, invitees."},
        {"name": "invite codes", "description": "Public lookup of invite codes."},
    ],
}

# Phones and one-time codes.
PHONE_REGION = env("PHONE_REGION", default="RU").strip().upper()
SMS_ALLOWED_REGIONS = [region.upper() for region in env.list("SMS_ALLOWED_REGIONS", default=["RU"])]
OTP_LENGTH = 4
OTP_TTL_SECONDS = env.int("OTP_TTL_SECONDS", default=300, minimum=1, maximum=YEAR_SECONDS)
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=5, minimum=1, maximum=MOST_COUNTED)
OTP_RESEND_SECONDS = env.int("OTP_RESEND_SECONDS", default=60, minimum=0, maximum=YEAR_SECONDS)
OTP_SENDS_PER_HOUR = env.int("OTP_SENDS_PER_HOUR", default=5, minimum=1, maximum=MOST_COUNTED)
OTP_SENDS_PER_DAY = env.int("OTP_SENDS_PER_DAY", default=10, minimum=1, maximum=MOST_COUNTED)
OTP_FAILURES_PER_DAY = env.int("OTP_FAILURES_PER_DAY", default=10, minimum=1, maximum=MOST_COUNTED)
OTP_GLOBAL_SENDS_PER_HOUR = env.int("OTP_GLOBAL_SENDS_PER_HOUR", default=1000, minimum=0, maximum=MOST_COUNTED)
# "+79990000000:1234,+79990000001:4321": fixed codes, no SMS, no send limits. Off by default.
# An entry without ":" keeps an empty code, so the accounts.E002 system check reports it.
OTP_TEST_PHONES = dict((*pair.split(":", 1), "")[:2] for pair in env.list("OTP_TEST_PHONES", default=[]))
AUTH_IP_RATE = env("AUTH_IP_RATE", default="30/minute")

# SMS delivery.
SMS_BACKEND = env("SMS_BACKEND", default="console")
SMS_TIMEOUT = env.float("SMS_TIMEOUT", default=10.0, minimum=0.1, maximum=60 * 60)
# The language of the SMS text; the phone's owner did not choose one, so it is the service's.
SMS_LANGUAGE = env("SMS_LANGUAGE", default="ru").strip().lower() or "ru"
SMSAERO_EMAIL = env("SMSAERO_EMAIL", default="")
SMSAERO_API_KEY = env("SMSAERO_API_KEY", default="")
EXOLVE_API_KEY = env("EXOLVE_API_KEY", default="")
EXOLVE_SENDER = env("EXOLVE_SENDER", default="")
# One gate, tried once (the library would walk three, one timeout each); a mirror gate or a local fake.
SMSAERO_URL = env("SMSAERO_URL", default="https://gate.smsaero.ru/v2/")
SMSAERO_SIGN = env("SMSAERO_SIGN", default="SMS Aero")
EXOLVE_URL = env("EXOLVE_URL", default="https://api.exolve.ru")

# The profile that sign-in replies carry; referrals widens the accounts' own one.
ACCOUNTS_PROFILE_SELECTOR = "referrals.selectors.get_profile_reply"
ACCOUNTS_PROFILE_SERIALIZER = "referrals.serializers.ProfileSerializer"
INVITE_URL_TEMPLATE = env("INVITE_URL_TEMPLATE", default="")

# Production hardening; `manage.py check --deploy` is clean when DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_HTTPS_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# The preload directive only consents to the browsers' list; nothing is submitted. As in cookiecutter-django.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")
# One JSON object a line on stdout in production, for the log collector; plain lines when developing.
LOG_FORMAT = env("LOG_FORMAT", default="plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "stream": "ext://sys.stdout",
            "filters": ["one_line"],
        },
    },
    "filters": {"one_line": {"()": "project.logs.RefusalsAsOneLine"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Named so that Django's defaults go: its level INFO let warnings past LOG_LEVEL, and its
        # console handler wrote each line a second time with DEBUG on. Its lines reach stdout as all
        # do; never below INFO, where the templates and the autoreloader log every lookup and file.
        "django": {"level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
        "django.db.backends": {"level": "INFO"},
        # smsaero-api logs each request's URL (API key included) and body (the code) at DEBUG.
        "smsaero": {"level": "WARNING"},
    },
}
