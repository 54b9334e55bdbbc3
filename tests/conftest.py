import re
import shutil
import socket
import subprocess
import threading
import time

import psycopg2
import pytest
import redis
from django.core.management import call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts import sms_backends
from accounts.models import User


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (row locks, real concurrency)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("createcachetable", verbosity=0)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def outbox():
    sms_backends.outbox.clear()
    yield sms_backends.outbox
    sms_backends.outbox.clear()


@pytest.fixture
def make_user(db):
    counter = iter(range(10_000_000))

    def make(phone=None, **fields):
        return User.objects.create_user(phone or f"+7911{next(counter):07d}", **fields)

    return make


def code_sent_to(outbox, phone):
    """The code in the newest SMS to `phone`."""
    texts = [message["text"] for message in outbox if message["phone"] == phone]
    assert texts, f"no SMS to {phone}"
    return re.search(r"\b(\d{4})\b", texts[-1]).group(1)


@pytest.fixture
def sign_in(api, outbox):
    """The whole flow through HTTP: request a code, read the SMS, exchange it for tokens."""

    def run(phone="+79110000001"):
        response = api.post("/api/v1/auth/code/", {"phone": phone}, format="json")
        assert response.status_code == 200, response.json()
        e164 = response.json()["phone"]
        response = api.post("/api/v1/auth/token/", {"phone": e164, "code": code_sent_to(outbox, e164)}, format="json")
        assert response.status_code == 200, response.json()
        return response.json()

    return run


@pytest.fixture
def authed(make_user):
    """A client signed in as a fresh user (force_authenticate: for non-login tests)."""

    def make(user=None):
        user = user or make_user()
        client = APIClient()
        client.force_authenticate(user)
        client.user = user
        return client

    return make


def run_concurrently(count, work):
    """Start `count` threads that call work(i) at the same instant; each has its own DB connection."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def in_a_thread(work, *, deadlock_timeout="1s"):
    """work() on a connection of its own whose deadlock check waits `deadlock_timeout`: the side
    with the shorter one finds the cycle, and PostgreSQL fails that side."""
    outcome = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('deadlock_timeout', %s, false)", [deadlock_timeout])
            outcome["response"] = work()
        except Exception as exc:  # handed to the test, which fails on it
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_until_a_query_waits_on_a_lock(timeout=10.0, *, queries=1, kinds=None):
    """Until `queries` sessions of this database wait for a lock (of one of `kinds`, PostgreSQL's
    wait_event names such as "advisory" or "transactionid", when given)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Cleared each time: inside a transaction PostgreSQL keeps showing its first look at the view.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                " AND (%s::text[] IS NULL OR wait_event = ANY(%s::text[]))",
                [kinds and list(kinds)] * 2,
            )
            if cursor.fetchone()[0] >= queries:
                return
            time.sleep(0.02)
    raise AssertionError(f"fewer than {queries} queries ever waited on a lock{f' of {kinds}' if kinds else ''}")


def on_delete_actions(table: str, referenced: str) -> list[str]:
    """PostgreSQL's actions (confdeltype: "n" is ON DELETE SET NULL) of `table`'s foreign keys to `referenced`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confdeltype FROM pg_constraint WHERE conrelid = %s::regclass AND confrelid = %s::regclass",
            [table, referenced],
        )
        return [action for (action,) in cursor.fetchall()]


def is_postgres():
    return connection.vendor == "postgresql"


def drop_this_connection() -> None:
    """This thread's database connection ended by the server, as in a restart or a failover."""
    backend = connection.connection.info.backend_pid
    other = psycopg2.connect(**connection.get_connection_params())
    other.autocommit = True  # each poll its own snapshot: one transaction would see the backend forever
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the signal is sent; wait for the backend to be gone
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend])
                if not cursor.fetchone()[0]:
                    return
                time.sleep(0.01)
            pytest.fail(f"backend {backend} outlived pg_terminate_backend")
    finally:
        other.close()


def room_in_the_rate_window(seconds: float = 5, window: int = 60) -> None:
    """Wait for the next fixed window of the per-IP counters (accounts.rate_limits) when the current
    one ends within `seconds`: a test that counts its requests needs them all in one window."""
    left = window - time.time() % window
    if left < seconds:
        time.sleep(left + 0.05)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["read-only replica", "out of memory"])
def redis_refusing_writes(request, settings):
    """A real Redis that answers but refuses every write: a replica after a failover (READONLY), or
    one at its memory limit under the default noeviction policy (OOM). Its URL is the project's."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    refusal = ["--replicaof", "127.0.0.1", "1"] if request.param == "read-only replica" else ["--maxmemory", "1"]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *refusal],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()  # it answers, so a 503 below is its refusal, not a server that never started
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        with pytest.raises((redis.ReadOnlyError, redis.exceptions.OutOfMemoryError)):
            client.set("probe", 1)
        client.close()
        settings.REDIS_URL = url
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def assert_sign_in_unavailable(client, phone: str) -> None:
    """Both steps of signing in are 503 `service_unavailable`, to be retried after `Retry-After`."""
    client.raise_request_exception = False
    replies = [
        client.post("/api/v1/auth/code/", {"phone": phone}, format="json"),
        client.post("/api/v1/auth/token/", {"phone": phone, "code": "1234"}, format="json"),
    ]

    assert [reply.status_code for reply in replies] == [503, 503]
    assert {reply.json()["code"] for reply in replies} == {"service_unavailable"}
    assert {reply["Retry-After"] for reply in replies} == {"5"}
