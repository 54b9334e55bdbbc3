"""The hottest reads run as prepared statements on PostgreSQL: planned once per connection."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest
from django.db import DataError, connection
from rest_framework.test import APIClient

from project.prepared_statements import fetch_prepared, statement_name
from tests.referral_graph import make_invitees

# Transactional: the tests close the connection, which the default wrapping transaction forbids.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def prepared_statements() -> dict[str, tuple[int, int]]:
    """Plans of the session's statements by the name the code gives them (before the SQL's digest)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements")
        return {name.rsplit("_", 1)[0]: (generic, custom) for name, generic, custom in cursor.fetchall()}


def test_the_profile_and_invitee_pages_are_planned_once_and_then_run_their_cached_plans(authed, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    client = authed()
    connection.close()  # a new server session: nothing prepared yet

    replies = [client.get(path) for path in ["/api/v1/me/", "/api/v1/me/invitees/"] * 12]

    assert {reply.status_code for reply in replies} == {200}
    for name in ("referrals_profile", "referrals_invitees_desc_all_51"):  # the profile, the first page
        generic, custom = prepared_statements()[name]
        # PostgreSQL tries custom plans for the first 5 runs, then keeps the generic one: no more planning.
        assert generic >= 6, (name, generic, custom)
        assert custom <= 5, (name, generic, custom)


def test_a_new_connection_prepares_again(authed, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    client = authed()
    assert client.get("/api/v1/me/").status_code == 200
    assert "referrals_profile" in prepared_statements()

    connection.close()
    assert "referrals_profile" not in prepared_statements()  # the server forgot them with the session

    reply = client.get("/api/v1/me/")
    assert reply.status_code == 200
    assert reply.json()["phone"] == client.user.phone
    assert "referrals_profile" in prepared_statements()


def test_the_switch_turns_them_off_with_the_same_replies(authed, settings):
    client = authed()
    make_invitees(client.user, 3)
    connection.close()

    settings.DATABASE_PREPARED_STATEMENTS = False
    plain = client.get("/api/v1/me/").json()
    assert prepared_statements() == {}

    settings.DATABASE_PREPARED_STATEMENTS = True
    assert client.get("/api/v1/me/").json() == plain
    assert "referrals_profile" in prepared_statements()


def test_a_deep_cursor_runs_its_generic_plan_every_time(authed, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    client = authed()
    make_invitees(client.user, 300)
    connection.close()  # a new session, set up for prepared statements
    url = client.get("/api/v1/me/invitees/?page_size=100").json()["next"]

    replies = [client.get(url) for _ in range(12)]

    assert {reply.status_code for reply in replies} == {200}
    assert prepared_statements()["referrals_invitees_desc_row_101"] == (12, 0)  # (generic, custom) plans


def test_sessions_keep_the_default_plan_choice_without_prepared_statements(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()

    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("auto",)


def test_each_thread_prepares_on_its_own_connection(authed, settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    client = authed()
    turns = threading.Barrier(2)
    statuses = []

    def read_profile_in_turns():
        try:
            for _ in range(3):
                turns.wait(timeout=10)  # both threads alternate on their own connections
                own_client = APIClient()
                own_client.force_authenticate(client.user)
                statuses.append(own_client.get("/api/v1/me/").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=read_profile_in_turns) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * 6


def test_a_statement_whose_first_run_fails_still_runs_next_time(settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    connection.close()

    with pytest.raises(DataError):
        fetch_prepared("tests_one_over", "SELECT 1 / $1", [0], many=False)  # division by zero
    assert fetch_prepared("tests_one_over", "SELECT 1 / $1", [1], many=False) == (1,)


def test_a_connection_replaced_by_its_health_check_prepares_again(settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    try:
        assert fetch_prepared("tests_plus_one", "SELECT $1::int + 1", [1], many=False) == (2,)
        connection.close_if_unusable_or_obsolete()  # the end of a request
        with psycopg2.connect(**connection.get_connection_params()) as other, other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.get_backend_pid()])

        # The next request's first query finds the connection dead and opens another.
        assert fetch_prepared("tests_plus_one", "SELECT $1::int + 1", [2], many=False) == (3,)
    finally:
        connection.settings_dict["CONN_HEALTH_CHECKS"] = False
        connection.close()


def test_one_name_with_other_sql_is_another_statement(settings):
    # A session that outlived a release (behind a pooler) may hold the old release's statement.
    settings.DATABASE_PREPARED_STATEMENTS = True

    assert fetch_prepared("tests_changed", "SELECT 1", [], many=False) == (1,)
    assert fetch_prepared("tests_changed", "SELECT 1, 2", [], many=False) == (1, 2)


def test_a_statement_the_session_already_has_is_used_as_it_is(settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    name = statement_name("tests_already", "SELECT 41 + $1::int")
    with connection.cursor() as cursor:
        cursor.execute(f"PREPARE {name} AS SELECT 41 + $1::int")  # prepared behind the module's back

    assert fetch_prepared("tests_already", "SELECT 41 + $1::int", [1], many=False) == (42,)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "True"),
        ({"CONN_MAX_AGE": "0"}, "False"),  # a connection per request: preparing would not pay
        ({"CONN_MAX_AGE": "0", "DATABASE_PREPARED_STATEMENTS": "1"}, "True"),
        ({"DATABASE_PREPARED_STATEMENTS": "0"}, "False"),
    ],
)
def test_the_switch_follows_the_connection_lifetime_unless_set(environment, expected):
    base = {
        key: value for key, value in os.environ.items() if key not in {"CONN_MAX_AGE", "DATABASE_PREPARED_STATEMENTS"}
    }
    show = "from django.conf import settings; print(settings.DATABASE_PREPARED_STATEMENTS)"
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show],
        cwd=Path(__file__).resolve().parent.parent, env={**base, **environment},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    assert shown.stdout.split()[-1] == expected
