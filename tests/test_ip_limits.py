"""Per-client-IP limits on the auth endpoints, shared by every process through the cache."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_fourth_request_in_a_minute_is_429_with_retry_after(settings, outbox):
    settings.AUTH_IP_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    statuses = [client.post("/api/v1/auth/token/", {}, format="json").status_code for _ in range(4)]

    assert statuses == [400, 400, 400, 429]
    response = client.post("/api/v1/auth/token/", {}, format="json")
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.django_db
def test_limits_are_per_endpoint_and_per_ip(settings):
    settings.AUTH_IP_RATE = "1/minute"
    first, second = APIClient(REMOTE_ADDR="203.0.113.7"), APIClient(REMOTE_ADDR="203.0.113.8")

    assert first.post("/api/v1/auth/token/", {}, format="json").status_code == 400
    assert first.post("/api/v1/auth/token/", {}, format="json").status_code == 429
    assert first.post("/api/v1/auth/code/", {}, format="json").status_code == 400
    assert second.post("/api/v1/auth/token/", {}, format="json").status_code == 400


@pytest.mark.django_db
def test_forwarded_for_header_does_not_pick_the_bucket(settings):
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")

    client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1")
    response = client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert response.status_code == 429


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ip_limit_is_shared_by_gunicorn_workers(tmp_path):
    cache.clear()  # earlier tests that commit leave their counts for 127.0.0.1 in the cache table
    port = free_port()
    database = connection.settings_dict
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "AUTH_IP_RATE": "5/minute",
        "SECRET_KEY": "gunicorn-test-secret-key-0123456789abcdefghijklmnop",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "CONN_MAX_AGE": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3",
         "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        statuses = []
        for _ in range(15):
            # A new connection each time, so the requests spread over the workers.
            with requests.Session() as session:
                statuses.append(session.post(f"{base}/api/v1/auth/token/", json={}, timeout=10).status_code)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    assert Counter(statuses) == {400: 5, 429: 10}
    pids = set(re.findall(r"^<(\d+)> (?:400|429)$", access_log.read_text(), re.MULTILINE))
    assert len(pids) >= 2, "all requests went to one worker; the test proved nothing"


def redis_url():
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_reachable():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.django_db
@pytest.mark.skipif(not redis_reachable(), reason="Redis is not running on 127.0.0.1:6379")
def test_limits_live_in_redis_when_redis_url_is_set(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url()}}
    settings.AUTH_IP_RATE = "2/minute"
    cache.clear()
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    statuses = [client.post("/api/v1/auth/token/", {}, format="json").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]
    assert cache.get("throttle:auth:token:203.0.113.9")  # the history is in Redis
    cache.clear()


def test_redis_url_selects_the_redis_cache():
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/15"}
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "project.settings"}, capture_output=True, text=True, check=True,
    )  # fmt: skip

    assert result.stdout.strip() == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.django_db
def test_off_lifts_the_per_ip_limit(settings):
    settings.AUTH_IP_RATE = "off"
    client = APIClient(REMOTE_ADDR="203.0.113.10")

    statuses = {client.post("/api/v1/auth/token/", {}, format="json").status_code for _ in range(5)}

    assert statuses == {400}
    assert cache.get("throttle:auth:token:203.0.113.10") is None


@pytest.mark.django_db
def test_database_cache_keeps_the_counters_of_many_ips(settings):
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.11")
    client.post("/api/v1/auth/token/", {}, format="json")
    # Other clients' counters: more than Django's default MAX_ENTRIES (300), which would cull this one.
    for i in range(700):
        cache.set(f"throttle:auth:token:other-{i}", [1.0], 60)

    assert client.post("/api/v1/auth/token/", {}, format="json").status_code == 429
