"""Per-client-IP limits on the auth endpoints: atomic counters shared by every worker and process."""

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
from redis.exceptions import DataError, ReadOnlyError
from rest_framework.test import APIClient

from accounts.models import RateCounter
from project.exception_handler import is_outage
from tests.conftest import assert_sign_in_unavailable, free_port, room_in_the_rate_window, run_concurrently

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_window():
    room_in_the_rate_window()


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
@pytest.mark.parametrize("other", ["/api/v1/auth/token/refresh/", "/api/v1/auth/logout/"])
def test_a_spent_sign_in_limit_leaves_refreshes_and_sign_outs_their_own(settings, other):
    # Apps signed in behind one NAT address keep refreshing while someone there guesses codes.
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")

    assert client.post("/api/v1/auth/token/", {}, format="json").status_code == 400
    assert client.post("/api/v1/auth/token/", {}, format="json").status_code == 429
    assert client.post(other, {}, format="json").status_code == 400
    assert client.post(other, {}, format="json").status_code == 429  # a limit of its own, not none


@pytest.mark.django_db
def test_activating_invite_codes_is_limited_per_ip_as_looking_them_up_is(settings, make_user):
    # Until a code takes, each unknown one answers 400: without a limit, a guess a few milliseconds.
    settings.AUTH_IP_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    client.force_authenticate(make_user())
    guesses = [client.post("/api/v1/me/invite/", {"invite_code": code}, format="json") for code in ["AAAAAA"] * 4]

    assert [guess.status_code for guess in guesses] == [400, 400, 400, 429]
    assert guesses[-1].json()["code"] == "throttled"
    assert 1 <= int(guesses[-1]["Retry-After"]) <= 60
    assert client.get("/api/v1/invite-codes/AAAAAA/").status_code == 404  # a counter of its own


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:abcd:1234:5678"),  # one /64: a device picks any address in it
        ("203.0.113.7", "::ffff:203.0.113.7"),  # IPv4, and the same address as IPv6 writes it
    ],
)
def test_addresses_one_client_can_switch_between_share_a_bucket(settings, first, second):
    settings.AUTH_IP_RATE = "1/minute"

    assert APIClient(REMOTE_ADDR=first).post("/api/v1/auth/token/", {}, format="json").status_code == 400
    assert APIClient(REMOTE_ADDR=second).post("/api/v1/auth/token/", {}, format="json").status_code == 429


@pytest.mark.django_db
def test_neighbouring_ipv6_networks_have_buckets_of_their_own(settings):
    settings.AUTH_IP_RATE = "1/minute"

    assert APIClient(REMOTE_ADDR="2001:db8:1:2::1").post("/api/v1/auth/token/", {}, format="json").status_code == 400
    assert APIClient(REMOTE_ADDR="2001:db8:1:3::1").post("/api/v1/auth/token/", {}, format="json").status_code == 400


@pytest.mark.django_db
def test_forwarded_for_header_does_not_pick_the_bucket(settings):
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")

    client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1")
    response = client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert response.status_code == 429


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_address_picks_the_bucket(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="10.0.0.2")  # the proxy

    assert client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 400
    assert client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 400
    assert client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client_port", "other_port", "other_client"),
    [
        ("198.51.100.1:5678", "198.51.100.1:9999", "198.51.100.2:5678"),
        ("[2001:db8::1]:443", "[2001:db8::1]:80", "[2001:db8:0:1::1]:443"),
        ("[2001:db8::1]", "2001:db8::1", "[2001:db8:0:1::1]"),
    ],
)
def test_a_proxy_that_writes_the_clients_port_gives_each_client_its_bucket(
    settings, client_port, other_port, other_client
):
    # Some proxies (Azure Application Gateway) write the client as address:port: read as no address,
    # every client counted against the proxy, and one client's requests locked everyone out.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AUTH_IP_RATE = "1/minute"
    client = APIClient(REMOTE_ADDR="10.0.0.2")  # the proxy

    def status(forwarded_for):
        return client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    assert [status(client_port), status(other_client), status(other_port)] == [400, 400, 429]


@pytest.mark.django_db
def test_a_forwarded_for_that_is_no_address_counts_against_the_peer(settings):
    # A client reaching the server past the proxy writes its own header: never a 500 (the
    # counter's key has a length limit), and no fresh bucket per made-up value either.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AUTH_IP_RATE = "2/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.14")

    statuses = [
        client.post("/api/v1/auth/token/", {}, format="json", HTTP_X_FORWARDED_FOR=forged).status_code
        for forged in ("x" * 300, "::1%" + "x" * 300, "::1%0", "198.51.100.9:\u0661\u0662")
    ]

    assert statuses == [400, 400, 429, 429]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ip_limit_is_shared_by_gunicorn_workers(tmp_path):
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
        room_in_the_rate_window()
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


def use_redis(settings):
    settings.REDIS_URL = redis_url()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url()}}
    cache.clear()


@pytest.mark.django_db
@pytest.mark.skipif(not redis_reachable(), reason="Redis is not running on 127.0.0.1:6379")
def test_limits_live_in_redis_when_redis_url_is_set(settings):
    use_redis(settings)
    settings.AUTH_IP_RATE = "2/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    statuses = [client.post("/api/v1/auth/token/", {}, format="json").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]
    assert not RateCounter.objects.exists()  # counted in Redis, not in the database
    cache.clear()


def burst(count):
    # Counted in fixed windows of a minute: a burst that straddled a minute's turn would count in two.
    if time.time() % 60 > 50:
        time.sleep(60.1 - time.time() % 60)

    def request(_):
        return APIClient(REMOTE_ADDR="203.0.113.12").post("/api/v1/auth/token/", {}, format="json").status_code

    return Counter(run_concurrently(count, request))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_simultaneous_burst_gets_exactly_the_limit_on_the_database(settings):
    settings.AUTH_IP_RATE = "5/minute"

    assert burst(20) == {400: 5, 429: 15}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not redis_reachable(), reason="Redis is not running on 127.0.0.1:6379")
def test_a_simultaneous_burst_gets_exactly_the_limit_on_redis(settings):
    use_redis(settings)
    settings.AUTH_IP_RATE = "5/minute"

    assert burst(20) == {400: 5, 429: 15}
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
    assert not RateCounter.objects.exists()


@pytest.mark.django_db
def test_empty_rate_means_the_default_not_off(settings):
    settings.AUTH_IP_RATE = ""
    client = APIClient(REMOTE_ADDR="203.0.113.13")

    statuses = [client.post("/api/v1/auth/token/", {}, format="json").status_code for _ in range(31)]

    assert statuses[-1] == 429
    assert statuses.count(400) == 30


@pytest.mark.django_db
def test_a_host_with_a_slower_clock_cannot_reset_the_counter(settings):
    from accounts.rate_limits import UPSERT

    settings.AUTH_IP_RATE = "2/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.14")
    client.post("/api/v1/auth/token/", {}, format="json")
    client.post("/api/v1/auth/token/", {}, format="json")
    counter = RateCounter.objects.get(key="throttle:auth:token:203.0.113.14")
    with connection.cursor() as cursor:  # another host, its clock one window behind
        cursor.execute(UPSERT, [counter.key, counter.window_start - 60])

    assert client.post("/api/v1/auth/token/", {}, format="json").status_code == 429


@pytest.mark.django_db
def test_a_redis_that_refuses_writes_is_a_json_503_not_a_500(redis_refusing_writes):
    assert_sign_in_unavailable(APIClient(REMOTE_ADDR="203.0.113.13"), "+79110000000")


@pytest.mark.django_db
def test_an_unreachable_redis_is_a_json_503_not_a_500(settings):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REDIS_URL = url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    client = APIClient(REMOTE_ADDR="203.0.113.13")
    client.raise_request_exception = False

    response = client.post("/api/v1/auth/code/", {"phone": "+79110000000"}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


def test_a_value_redis_py_cannot_send_is_a_bug_not_an_outage():
    # Raised before anything is sent (a None where a value belongs): a 500 to fix, not a 503 to retry.
    assert not is_outage(DataError("Invalid input of type: 'NoneType'."))
    assert is_outage(ReadOnlyError("You can't write against a read only replica."))
