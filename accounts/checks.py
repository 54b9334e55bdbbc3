import os
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core import checks
from django.core.checks import Error, register
from django.utils.translation import get_supported_language_variant
from email_validator import EmailNotValidError, validate_email
from redis.connection import ConnectionPool, parse_url

from accounts.otp import invalid_test_phones
from accounts.sms_backends import BACKENDS, ConsoleBackend, MemoryBackend, backend_class
from accounts.throttles import RATE_PERIODS, AuthIPThrottle


@register()
def sms_backend_exists(app_configs, **kwargs):
    """An unknown SMS_BACKEND fails at start-up, not on the first person's sign-in."""
    name = settings.SMS_BACKEND
    try:
        backend_class()
    except ImportError:
        return [
            Error(f"SMS_BACKEND={name!r} is not one of {sorted(BACKENDS)} nor an importable class.", id="accounts.E001")
        ]
    return []


@register()
def otp_test_phones_are_valid(app_configs, **kwargs):
    """A typo in OTP_TEST_PHONES is reported at start-up instead of silently ignored."""
    return [
        Error(
            f"OTP_TEST_PHONES entry {raw!r} is not a valid phone with a {settings.OTP_LENGTH}-digit code.",
            id="accounts.E002",
        )
        for raw in invalid_test_phones()
    ]


@register()
def auth_ip_rate_parses(app_configs, **kwargs):
    """A malformed AUTH_IP_RATE fails at start-up, not as a 500 on every auth request."""
    try:
        throttle = AuthIPThrottle()  # parses the rate as every request would
    except (ValueError, KeyError, IndexError):
        throttle = None
    # 0 a window would refuse every sign-in and the admin's password form: 'off' lifts the limit instead.
    if (
        throttle is None
        or (throttle.num_requests is not None and throttle.num_requests < 1)
        or (throttle.rate is not None and throttle.rate.partition("/")[2] not in RATE_PERIODS)
    ):
        return [
            Error(
                f"AUTH_IP_RATE={settings.AUTH_IP_RATE!r} is not a rate like '30/minute' (or 'off').", id="accounts.E003"
            )
        ]
    return []


@register()
def regions_are_known(app_configs, **kwargs):
    """A region phonenumbers does not know would refuse every number quietly."""
    # An empty PHONE_REGION is none: every number must then be written with its country code.
    named = [("PHONE_REGION", settings.PHONE_REGION)] if settings.PHONE_REGION else []
    named += [("SMS_ALLOWED_REGIONS", region) for region in settings.SMS_ALLOWED_REGIONS]
    return [
        Error(f"{name}: {region!r} is not a region code such as RU or KZ.", id="accounts.E004")
        for name, region in named
        if region not in phonenumbers.SUPPORTED_REGIONS
    ]


@register()
def redis_url_parses(app_configs, **kwargs):
    """A malformed REDIS_URL fails at start-up, not as a 500 on every auth request."""
    if not settings.REDIS_URL:
        return []
    try:
        parse_url(settings.REDIS_URL)
        # redis-py reads a database that is not a number as 0, and passes unknown query options on
        # to its connections, which refuse them with a TypeError: a 500 on every limited request.
        database = urlsplit(settings.REDIS_URL).path.strip("/")
        if database and not database.isdigit():
            raise ValueError("the database is not a number")
        pool = ConnectionPool.from_url(settings.REDIS_URL)
        pool.connection_class(**pool.connection_kwargs)  # builds the connection, does not connect
    except (ValueError, TypeError):
        # Neither the value nor the parser's message is repeated: either may hold the password.
        return [
            Error(
                "REDIS_URL is not a URL such as redis://host:6379/0 (a password with / ? # @ or : must be"
                " percent-encoded; the database is a number; query options are redis-py's own).",
                id="accounts.E005",
            )
        ]
    return []


@register()
def sms_provider_is_configured(app_configs, **kwargs):
    """A provider without its credentials fails at start-up, not with a 503 for every sign-in."""
    name = settings.SMS_BACKEND
    try:
        backend = backend_class()
    except ImportError:
        return []  # sms_backend_exists reports it
    missing = [setting for setting in getattr(backend, "required_settings", ()) if not getattr(settings, setting)]
    if missing:
        return [Error(f"SMS_BACKEND={name} needs {' and '.join(missing)}.", id="accounts.E006")]
    return _provider_credentials_are_printable_ascii(backend) + _provider_settings_are_well_formed(name)


def _provider_credentials_are_printable_ascii(backend: type) -> list[Error]:
    # The credentials travel in an HTTP header (Exolve's Bearer key, SMS Aero's Basic auth), written in
    # Latin-1: a character beyond it ("key\u2026" copied from a shortened display) was a 500 on every code
    # request, and one within it (\u00e9) would reach the provider as a byte it does not read as we do.
    errors = []
    for setting in getattr(backend, "credential_settings", ()):
        value = getattr(settings, setting)
        wrong = [(at, char) for at, char in enumerate(value, 1) if not (char.isascii() and char.isprintable())]
        if wrong:
            at, char = wrong[0]  # the character and its place, never the value: it is a secret
            message = (
                f"{setting} is not printable ASCII (U+{ord(char):04X} at character {at}); the provider's"
                " credentials travel in an HTTP header. Copy it again from the provider's account."
            )
            errors.append(Error(message, id="accounts.E010"))
    return errors


def _provider_settings_are_well_formed(name: str) -> list[Error]:
    # A provider's address without its scheme, or an account that is no e-mail address, would only
    # show as a 503 on every sign-in (send_test_sms tells why, but nobody runs it before the first user).
    errors = []
    urls = {"smsaero": ["SMSAERO_URL"], "exolve": ["EXOLVE_URL"]}.get(name, [])
    for setting in urls:
        value = getattr(settings, setting)
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            errors.append(Error(f"{setting}={value!r} is not an http(s) URL.", id="accounts.E009"))
    if name == "smsaero":
        try:
            validate_email(settings.SMSAERO_EMAIL, check_deliverability=False)
        except EmailNotValidError:
            errors.append(Error("SMSAERO_EMAIL is not an e-mail address (the SMS Aero account's).", id="accounts.E009"))
    return errors


@register()
def sms_timeout_ends_before_the_worker_is_killed(app_configs, **kwargs):
    """A send still waiting when gunicorn kills its worker leaves the client a dropped connection, not the 503."""
    try:  # as project/gunicorn.conf.py reads it
        worker_timeout = int(os.environ.get("GUNICORN_TIMEOUT", "").strip() or 30)
    except ValueError:
        return []  # gunicorn refuses it itself
    if 0 < worker_timeout <= settings.SMS_TIMEOUT:
        message = f"SMS_TIMEOUT={settings.SMS_TIMEOUT:g} must be below GUNICORN_TIMEOUT={worker_timeout}."
        return [Error(message, id="accounts.E007")]
    return []


@register()
def sms_language_is_served(app_configs, **kwargs):
    """A language without a catalogue here would send every SMS in English without a word."""
    try:
        get_supported_language_variant(settings.SMS_LANGUAGE)  # ru-RU is ru, as for Accept-Language
    except LookupError:
        codes = [code for code, _name in settings.LANGUAGES]
        return [Error(f"SMS_LANGUAGE={settings.SMS_LANGUAGE!r} is not one of {codes}.", id="accounts.E008")]
    return []


@register()
def codes_reach_people_when_not_debugging(app_configs, **kwargs):
    """Said at every start (bin/entrypoint logs warnings): with DEBUG off, codes that reach no phone, and
    phones that sign in without one, are most likely a deployment's mistake."""
    if settings.DEBUG:
        return []
    warnings = []
    try:
        backend = backend_class()
    except ImportError:
        backend = None  # sms_backend_exists reports it
    if backend is not None and issubclass(backend, ConsoleBackend | MemoryBackend):
        where = "written to the log" if issubclass(backend, ConsoleBackend) else "kept in the process"
        warnings.append(
            checks.Warning(
                f"SMS_BACKEND={settings.SMS_BACKEND} with DEBUG off: codes are {where}, not sent to phones.",
                hint="Set SMS_BACKEND to smsaero or exolve for real users.",
                id="accounts.W001",
            )
        )
    if settings.OTP_TEST_PHONES:
        warnings.append(
            checks.Warning(
                f"OTP_TEST_PHONES with DEBUG off: {len(settings.OTP_TEST_PHONES)} phone(s) sign in with a fixed code.",
                hint="Keep them for end-to-end tests and app-store review accounts only.",
                id="accounts.W002",
            )
        )
    return warnings
