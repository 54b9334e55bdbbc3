"""Production settings and the deployment's own files: .env.sample, `check --deploy`, the first admin."""

import ast
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from project.settings import SAMPLE_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
# Variables the test run itself sets (pytest.ini, pytest-django) that a deployment would not have.
TEST_ONLY = {"SECRET_KEY", "SECURE_SSL_REDIRECT", "SMS_BACKEND", "AUTH_IP_RATE", "DEBUG", "DJANGO_SETTINGS_MODULE"}


def manage(*args: str, env: dict[str, str], unset: frozenset[str] = frozenset()) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in TEST_ONLY | unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


POSTGRESQL_ONLY = {"CONN_MAX_AGE", "DB_CONNECT_TIMEOUT"}
PROVIDER = {"SMS_BACKEND": "exolve", "EXOLVE_API_KEY": "key", "EXOLVE_SENDER": "79110000000"}


def env_sample() -> dict[str, str]:
    lines = (ROOT / ".env.sample").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_check_deploy_is_clean_under_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env={
            "DEBUG": "0",
            "DATABASE_URL": "postgres://app:secret@db.example:5432/app",
            "SECRET_KEY": "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ",
            "ALLOWED_HOSTS": "api.example.com",
            **PROVIDER,
        },
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("env", "warnings"),
    [
        ({"SMS_BACKEND": "console"}, ["accounts.W001"]),
        ({"SMS_BACKEND": "memory"}, ["accounts.W001"]),
        ({**PROVIDER, "OTP_TEST_PHONES": "+79990000000:1234"}, ["accounts.W002"]),
        ({**PROVIDER, "OTP_TEST_PHONES": ""}, []),
        ({"SMS_BACKEND": "console", "DEBUG": "1"}, []),
    ],
)
def test_the_checks_warn_of_codes_that_reach_no_phone_with_debug_off(env, warnings):
    base = {
        "DEBUG": "0",
        "SECRET_KEY": "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ",
        "ALLOWED_HOSTS": "a.example",
    }

    result = manage("check", env={**base, **env})

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.findall(r"accounts\.W\d+", result.stdout + result.stderr) == warnings


@pytest.mark.parametrize(("database_url", "warned"), [(None, True), ("sqlite:////srv/app/db.sqlite3", False)])
def test_production_warns_when_no_database_url_was_given(database_url, warned):
    # Without one the settings fall back to a SQLite file beside the code, the first-run default.
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ",
        "ALLOWED_HOSTS": "a.example",
    }
    with_url = {} if database_url is None else {"DATABASE_URL": database_url}

    result = manage("check", env={**env, **with_url}, unset=frozenset({"DATABASE_URL"}))

    assert result.returncode == 0, result.stderr
    assert ("project.W001" in result.stdout + result.stderr) is warned


def test_production_refuses_the_public_development_key():
    result = manage("check", env={"DEBUG": "0", "ALLOWED_HOSTS": "api.example.com"})

    assert result.returncode != 0
    assert "Set SECRET_KEY: the development key is public." in result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        "x9-" + "ab" * 20,  # 43 characters: Django's deploy check asks for 50
        "ab" * 30,  # 60, but of 2 different characters
        "django-insecure-" + "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ",  # startproject's, not to deploy
    ],
)
def test_production_refuses_a_secret_key_the_deploy_check_calls_weak(secret):
    result = manage("check", env={"DEBUG": "0", "SECRET_KEY": secret, "ALLOWED_HOSTS": "api.example.com"})

    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


@pytest.mark.parametrize("signing", ["k" * 31, SAMPLE_SECRET_KEY], ids=["31 characters", ".env.sample's"])
def test_production_refuses_a_jwt_signing_key_anyone_could_find(signing):
    # Whoever finds the key signs access tokens for any user.
    secret = "jwt-key-test-secret-key-0123456789abcdef0123456789abcdef"
    env = {"DEBUG": "0", "SECRET_KEY": secret, "JWT_SIGNING_KEY": signing, "ALLOWED_HOSTS": "api.example.com"}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be at least 32 characters and not a public key." in result.stderr
    assert manage("check", env={**env, "JWT_SIGNING_KEY": "k" * 32}).returncode == 0


def test_a_value_starting_with_a_dollar_is_itself_not_another_variable():
    # Django's get_random_secret_key() starts with "$" once in 50 keys; django-environ read
    # "$abc..." as the value of a variable named "abc...".
    secret, signing = "$" + "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ", "$signing-" + "q" * 40
    shown = "from django.conf import settings as s; print(s.SECRET_KEY, s.SIMPLE_JWT['SIGNING_KEY'])"

    result = manage(
        "shell", "-c", shown,
        env={"DEBUG": "0", "SECRET_KEY": secret, "JWT_SIGNING_KEY": signing, "ALLOWED_HOSTS": "a.example"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [secret, signing]


def test_env_sample_can_be_read_by_a_shell_as_well_as_by_compose():
    # .env.sample tells those who run manage.py by hand to export .env with the shell.
    result = subprocess.run(
        ["bash", "-c", "set -ea; . ./.env.sample; set +a; env"], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert exported["SMSAERO_SIGN"] == "SMS Aero"
    assert exported["SECRET_KEY"] == env_sample()["SECRET_KEY"]


def test_env_sample_matches_the_compose_database():
    sample = env_sample()

    user, password, name = sample["POSTGRES_USER"], sample["POSTGRES_PASSWORD"], sample["POSTGRES_DB"]
    assert sample["DATABASE_URL"] == f"postgres://{user}:{password}@db:5432/{name}"


def test_env_sample_refuses_to_start_until_its_secret_key_is_replaced():
    result = manage("check", env=env_sample())

    assert result.returncode != 0
    assert "Set SECRET_KEY in .env: the key of .env.sample is public." in result.stderr


def test_env_sample_with_its_own_secret_key_only_warns_about_plain_http_and_the_console():
    # Compose serves plain HTTP on localhost, and its codes go to the log: the warnings left are the
    # HTTPS redirect and the console backend.
    own_key = "k7Qz-2vN8pXw4rT9bYc1mLd6sFh3jGa5eUo0iKy8nBq7tVx2wZ"
    result = manage("check", "--deploy", env={**env_sample(), "SECRET_KEY": own_key})

    assert result.returncode == 0, result.stdout + result.stderr
    found = set(re.findall(r"\(([\w.]+\.[WE]\d+)\)", result.stdout + result.stderr))
    assert found == {"security.W008", "accounts.W001"}


@pytest.mark.django_db
@pytest.mark.parametrize("written", ["+79110000000", "8 911 000 00 00", "+7 (911) 000-00-00", "8 (911) 000-00-00"])
def test_first_admin_is_created_from_the_environment(monkeypatch, client, written):
    monkeypatch.setenv("DJANGO_SUPERUSER_PHONE", written)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct-horse-battery-staple")

    call_command("createsuperuser", interactive=False, verbosity=0)

    admin = User.objects.get()
    assert (admin.phone, admin.is_staff, admin.is_superuser) == ("+79110000000", True, True)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "+79110000000", "password": "correct-horse-battery-staple"},
        secure=True,
    )
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert int(client.session["_auth_user_id"]) == admin.pk


@pytest.mark.django_db
def test_the_first_admin_s_phone_may_be_given_as_an_option_in_any_written_form(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct-horse-battery-staple")

    call_command("createsuperuser", "--phone", "+7 (911) 000-00-01", interactive=False, verbosity=0)

    assert User.objects.get(is_superuser=True).phone == "+79110000001"


@pytest.mark.django_db
def test_the_first_admin_s_phone_is_asked_for_in_any_written_form(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter(["not a phone", "+7 (911) 000-00-02"])
    monkeypatch.setattr("builtins.input", lambda message: next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt="Password: ": "correct-horse-battery-staple")

    call_command("createsuperuser", interactive=True, stdin=Terminal(), verbosity=0)

    assert User.objects.get(is_superuser=True).phone == "+79110000002"
    assert "Enter a valid phone number" in capsys.readouterr().err


@pytest.mark.django_db
def test_a_first_admin_phone_that_is_no_phone_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PHONE", "+7 (911) 000")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct-horse-battery-staple")

    with pytest.raises(CommandError, match="Enter a valid phone number"):
        call_command("createsuperuser", interactive=False, verbosity=0)


def test_an_empty_number_or_boolean_means_its_default():
    blank = {name: "" for name in ("OTP_TTL_SECONDS", "SMS_TIMEOUT", "CONN_HEALTH_CHECKS", "JWT_ACCESS_MINUTES")}
    shown = (
        "from django.conf import settings as s; "
        "print(s.OTP_TTL_SECONDS, s.SMS_TIMEOUT, s.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'])"
    )

    result = manage("shell", "-c", shown, env={"DEBUG": "1", **blank})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["300", "10.0", "0:15:00"]


@pytest.mark.parametrize(
    ("name", "value", "password"),
    [
        ("DATABASE_URL", "postgres://app:s3cr/etpass@db:5432/app", "s3cr"),
        ("DATABASE_URL", "postgres//app:Sup3rS3cret@db:5432/app", "Sup3rS3cret"),  # the colon left out
        ("DATABASE_URL", "postgres:/app:Sup3rS3cret@db:5432/app", "Sup3rS3cret"),  # one slash
        ("REDIS_URL", "redis://:hunter2/x@redis:6379/0", "hunter2"),
        # An option libpq does not know (a typo of sslmode): the entrypoint's first connection failed
        # with a traceback of the database driver's.
        ("DATABASE_URL", "postgres://app:Sup3rS3cret@db:5432/app?sslmod=require", "Sup3rS3cret"),
    ],
)
def test_a_url_that_cannot_be_read_is_named_without_its_password(name, value, password):
    result = manage("check", env={"DEBUG": "1", name: value})

    assert result.returncode != 0
    assert name in result.stderr
    assert password not in result.stdout + result.stderr


def test_an_option_libpq_does_not_know_is_named():
    url = "postgres://app:secret@db:5432/app?sslmode=require&sslmod=require&connect_timeout=3"

    result = manage("check", env={"DEBUG": "1", "DATABASE_URL": url})

    assert result.stderr.strip().splitlines()[-1].endswith("PostgreSQL does not know: sslmod.")


def test_sms_language_may_be_a_regional_form():
    result = manage("check", env={"DEBUG": "1", "SMS_LANGUAGE": "ru-RU"})

    assert result.returncode == 0, result.stderr


def test_token_lifetimes_are_settings():
    shown = "from django.conf import settings as s; print(*s.SIMPLE_JWT.values(), sep='|')"

    result = manage("shell", "-c", shown, env={"DEBUG": "1", "JWT_ACCESS_MINUTES": "5", "JWT_REFRESH_DAYS": "7"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split("|")[:2] == ["0:05:00", "7 days, 0:00:00"]


def test_accounts_never_imports_referrals():
    # README: referrals reacts to accounts (post_save), never the other way, so accounts stands alone.
    imported = set()
    for path in (ROOT / "accounts").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))

    assert [pair for pair in imported if pair[1].split(".")[0] == "referrals"] == []
    assert ("services.py", "accounts.models") in imported  # the walk reads imports at all


def test_regions_are_read_in_any_case_and_spacing():
    shown = "from django.conf import settings as s; print(s.PHONE_REGION, *s.SMS_ALLOWED_REGIONS)"

    result = manage("shell", "-c", shown, env={"DEBUG": "1", "PHONE_REGION": " ru", "SMS_ALLOWED_REGIONS": "ru, kz"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["RU", "RU", "KZ"]


def test_lists_are_read_with_spaces_after_their_commas():
    shown = (
        "from django.conf import settings as s; print(s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, s.CORS_ALLOWED_ORIGINS)"
    )
    lists = {
        "ALLOWED_HOSTS": "api.example.com, 127.0.0.1 ,",
        "CSRF_TRUSTED_ORIGINS": "https://a.example.com, https://b.example.com",
        "CORS_ALLOWED_ORIGINS": " https://app.example.com",
    }

    result = manage("shell", "-c", shown, env={"DEBUG": "1", **lists})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "['api.example.com', '127.0.0.1'] ['https://a.example.com', 'https://b.example.com'] ['https://app.example.com']"
    )


# A 401, which Django logs as a warning, and a refused host, which it logs as an error and the
# project writes as a warning (project.logs).
REFUSED_REQUESTS = (
    "from django.test import Client; Client().get('/api/v1/me/'); Client().get('/', HTTP_HOST='elsewhere.example')"
)


@pytest.mark.parametrize(("level", "lines"), [("WARNING", 1), ("ERROR", 0)])
def test_log_level_holds_for_djangos_own_loggers_and_each_line_is_written_once(level, lines):
    result = manage(
        "shell", "-c", REFUSED_REQUESTS, env={"DEBUG": "1", "LOG_LEVEL": level, "ALLOWED_HOSTS": "testserver"}
    )

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("Unauthorized: /api/v1/me/") == lines
    assert output.count("Invalid HTTP_HOST header: 'elsewhere.example'") == lines


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTP_TTL_SECONDS", "abc"),
        ("SMS_TIMEOUT", "10s"),
        ("SMS_TIMEOUT", "nan"),
        ("SMS_TIMEOUT", "0"),
        ("SMS_TIMEOUT", "30"),  # gunicorn would kill the worker first (GUNICORN_TIMEOUT, 30)
        ("OTP_SENDS_PER_HOUR", "0"),
        ("OTP_FAILURES_PER_DAY", "0"),
        ("OTP_RESEND_SECONDS", "-60"),
        ("NUM_PROXIES", "-1"),
        ("API_MAX_BODY_BYTES", "-1"),
        ("JWT_ACCESS_MINUTES", "0"),
        ("SECURE_SSL_REDIRECT", "ture"),
        ("CSRF_COOKIE_SECURE", "enable"),
        ("DATABASE_URL", "postgres//db/name"),
        ("DATABASE_URL", "postgress://app:secret@db:5432/app"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "text"),
        # Past their most, each was a 500 on every request that used it (a date past the year 9999,
        # a float out of range, a bigint out of range).
        ("JWT_ACCESS_MINUTES", "99999999999"),
        ("JWT_REFRESH_DAYS", "3000000"),
        ("OTP_TTL_SECONDS", "999999999999"),
        ("OTP_RESEND_SECONDS", "999999999999"),
        ("OTP_GLOBAL_SENDS_PER_HOUR", "9223372036854775808"),
        ("CONN_MAX_AGE", "1" + "0" * 400),
        ("DB_CONNECT_TIMEOUT", "99999999999"),
        ("PHONE_REGION", "XX"),
        ("SMS_ALLOWED_REGIONS", "RU,XX"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis://127.0.0.1:6379/11?foo=bar"),  # an option redis-py passes on, and its connections refuse
        ("REDIS_URL", "redis://127.0.0.1:6379/abc"),  # read as database 0
        ("INVITE_URL_TEMPLATE", "https://app.example.com/i/{id}"),
        ("INVITE_URL_TEMPLATE", "https://app.example.com/invite"),  # every user would share one link
        ("INVITE_URL_TEMPLATE", "https://app.example.com/i/{code:>40}"),
        ("SMS_BACKEND", "smsaero"),  # without SMSAERO_EMAIL and SMSAERO_API_KEY
        ("SMS_LANGUAGE", "de"),  # no catalogue: every SMS would go out in English
        ("SMS_BACKEND", "exolve"),  # without EXOLVE_API_KEY and EXOLVE_SENDER
        ("ALLOWED_HOSTS", "https://api.example.com"),  # every request would be 400, the health checks 200
        ("ALLOWED_HOSTS", "api.example.com:8000"),  # Django matches the host without its port
        ("ALLOWED_HOSTS", "*.example.com"),  # a pattern Django does not know: ".example.com" is
        ("DATABASE_URL", "sqlite://"),  # in memory: every process its own empty database
        ("DATABASE_URL", "sqlite:///:memory:"),
        ("DATABASE_URL", "postgres://app:secret@db:5432"),  # no database named
        ("DATABASE_URL", "postgres://app:secret@db:5432/"),
    ],
)
def test_a_setting_that_cannot_be_used_stops_start_up_and_names_itself(name, value):
    # Read for PostgreSQL only, whatever database the suite runs on.
    server = {"DATABASE_URL": "postgres://app:secret@db:5432/app"} if name in POSTGRESQL_ONLY else {}
    result = manage("check", env={"DEBUG": "1", **server, name: value})

    assert result.returncode != 0
    last_lines = (result.stderr.strip().splitlines() or [""])[-3:]
    assert any(name in line for line in last_lines), result.stderr


def test_a_provider_timeout_past_its_most_stops_start_up_without_a_worker_timeout_too():
    # GUNICORN_TIMEOUT=0 (no timeout) lifts accounts.E007's bound; 1e300 s was a 500 on every code request.
    result = manage("check", env={"DEBUG": "1", "GUNICORN_TIMEOUT": "0", "SMS_TIMEOUT": "1e300"})

    assert result.returncode != 0
    assert "SMS_TIMEOUT" in result.stderr.strip().splitlines()[-1]


def test_no_allowed_hosts_with_debug_off_stops_start_up():
    # Every request would be refused with 400 while the health checks, which answer first, say 200.
    secret = "allowed-hosts-test-secret-key-0123456789abcdef0123456789"
    result = manage("check", "--deploy", env={"DEBUG": "0", "SECRET_KEY": secret, "ALLOWED_HOSTS": ""})

    assert result.returncode != 0
    assert "(project.E001) ALLOWED_HOSTS is empty with DEBUG off" in result.stderr


@pytest.mark.parametrize(
    ("provider", "name", "value"),
    [
        (PROVIDER, "EXOLVE_URL", "api.exolve.ru"),  # no scheme
        ({"SMS_BACKEND": "smsaero", "SMSAERO_API_KEY": "key"}, "SMSAERO_EMAIL", "not-an-email"),
        (
            {"SMS_BACKEND": "smsaero", "SMSAERO_API_KEY": "key", "SMSAERO_EMAIL": "a@example.com"},
            "SMSAERO_URL",
            "ftp://x",
        ),
    ],
)
def test_a_provider_setting_of_the_wrong_form_stops_start_up(provider, name, value):
    # Otherwise every sign-in would answer 503 sms_delivery_failed from the first user on.
    result = manage("check", env={"DEBUG": "1", **provider, name: value})

    assert result.returncode != 0
    assert f"(accounts.E009) {name}" in result.stderr


def test_well_formed_provider_settings_pass():
    smsaero = {"SMS_BACKEND": "smsaero", "SMSAERO_API_KEY": "key", "SMSAERO_EMAIL": "ops@example.com"}
    for provider in (PROVIDER, smsaero):
        result = manage("check", env={"DEBUG": "1", **provider})

        assert result.returncode == 0, result.stderr
