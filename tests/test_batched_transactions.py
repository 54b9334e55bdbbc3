"""Sign-in and code requests send BEGIN and COMMIT with their statements: fewer round trips, same transactions."""

from collections import Counter

import psycopg2
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import CheckFailure, CodeSend, User
from project.prepared_statements import (
    batched_transaction,
    commit_before_next_statement,
    fetch_prepared,
    run_prepared,
)
from tests.conftest import code_sent_to, run_concurrently

# Transactional: outside a test's wrapping transaction, a batch is the outermost transaction.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

PHONE = "+79110000001"
INSERT = "INSERT INTO tests_batch_rows (value) VALUES ($1) RETURNING value"


@pytest.fixture
def rows(settings):
    settings.DATABASE_PREPARED_STATEMENTS = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS tests_batch_rows (value int CHECK (value >= 0))")
    yield lambda: _values("SELECT value FROM tests_batch_rows ORDER BY value")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE tests_batch_rows")


def _values(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [value for (value,) in cursor.fetchall()]


def idle() -> bool:
    return connection.connection.info.transaction_status == TRANSACTION_STATUS_IDLE


def sent(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def test_begin_and_commit_go_out_with_the_statements_next_to_them(rows):
    fetch_prepared("tests_insert", INSERT, [0], many=False)  # prepared beforehand: only the batch is counted

    with CaptureQueriesContext(connection) as queries, batched_transaction():
        run_prepared("tests_insert", INSERT, [1])
        assert fetch_prepared("tests_insert", INSERT, [2], many=False) == (2,)
        run_prepared("tests_insert", INSERT, [3])

    assert [statement.split("_")[0] for statement in sent(queries)] == ["BEGIN; EXECUTE tests", "EXECUTE tests"]
    assert sent(queries)[0].count("EXECUTE") == 2  # the statement that waited went with the next one
    assert sent(queries)[1].endswith("; COMMIT")
    assert rows() == [0, 1, 2, 3]
    assert idle()


def test_what_raises_inside_undoes_everything_and_leaves_no_transaction_open(rows):
    with pytest.raises(ZeroDivisionError), batched_transaction():
        assert fetch_prepared("tests_insert", INSERT, [1], many=False) == (1,)
        run_prepared("tests_insert", INSERT, [2])
        1 / 0  # noqa: B018

    assert idle()
    assert rows() == []


def test_a_statement_that_fails_at_the_commit_undoes_the_batch(rows):
    with pytest.raises(Exception, match="tests_batch_rows_value_check"), batched_transaction():
        fetch_prepared("tests_insert", INSERT, [1], many=False)
        run_prepared("tests_insert", INSERT, [-1])  # fails when it goes out, with the COMMIT

    assert idle()
    assert rows() == []


def test_a_commit_that_fails_leaves_nothing_and_no_transaction_open(rows):
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE tests_batch_rows ADD COLUMN user_id bigint "
            "REFERENCES accounts_user (id) DEFERRABLE INITIALLY DEFERRED"
        )
    insert = "INSERT INTO tests_batch_rows (value, user_id) VALUES ($1, $2)"

    with pytest.raises(IntegrityError), batched_transaction():
        fetch_prepared("tests_insert", INSERT, [1], many=False)
        run_prepared("tests_insert_user", insert, [2, -1])  # no such user: refused by the COMMIT itself

    assert idle()
    assert rows() == []


def test_an_orm_statement_inside_runs_in_the_transaction_after_what_waits(rows):
    with pytest.raises(ZeroDivisionError), batched_transaction():
        run_prepared("tests_insert", INSERT, [7])
        assert _values("SELECT value FROM tests_batch_rows") == [7]  # not through the batch: goes out after it
        1 / 0  # noqa: B018

    assert rows() == []  # and it was in the transaction that the error undid


def run_inside(inside: str) -> None:
    if inside == "fetch":
        fetch_prepared("tests_insert", INSERT, [2], many=False)
    elif inside == "run":
        run_prepared("tests_insert", INSERT, [2])
    elif inside == "run, not yet prepared":
        run_prepared("tests_insert_again", INSERT + " ", [2])  # its PREPARE would go out first
    else:
        User.objects.get_or_create(phone=PHONE)


INSIDE = ["fetch", "run", "run, not yet prepared", "orm"]


@pytest.mark.parametrize("inside", INSIDE)
def test_atomic_inside_an_outermost_batch_is_refused_before_it_sends_anything(rows, inside):
    fetch_prepared("tests_insert", INSERT, [0], many=False)
    with pytest.raises(TransactionManagementError), batched_transaction():
        fetch_prepared("tests_insert", INSERT, [1], many=False)
        with transaction.atomic():
            run_inside(inside)
        fetch_prepared("tests_insert", INSERT, [3], many=False)

    assert idle()
    assert rows() == [0]  # the batch's own statements too: its transaction was rolled back
    assert not User.objects.filter(phone=PHONE).exists()


@pytest.mark.parametrize("inside", INSIDE)
def test_atomic_inside_a_savepoint_batch_is_refused_too(rows, inside):
    # Tests run inside a transaction, where a batch is a savepoint and an atomic block would work:
    # refused all the same, so that a test meets what production would.
    with transaction.atomic():
        fetch_prepared("tests_insert", INSERT, [0], many=False)
        with pytest.raises(TransactionManagementError), batched_transaction():
            fetch_prepared("tests_insert", INSERT, [1], many=False)
            with transaction.atomic():
                run_inside(inside)

    assert rows() == [0]
    assert not User.objects.filter(phone=PHONE).exists()


def test_a_connection_lost_inside_a_batch_raises_its_own_error_and_is_replaced(rows):
    fetch_prepared("tests_insert", INSERT, [0], many=False)
    backend = connection.connection.info.backend_pid
    other = psycopg2.connect(**connection.get_connection_params())
    try:
        with pytest.raises(OperationalError), batched_transaction():
            fetch_prepared("tests_insert", INSERT, [1], many=False)
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            fetch_prepared("tests_insert", INSERT, [2], many=False)
    finally:
        other.close()
    connection.close_if_unusable_or_obsolete()  # the end of the request

    assert rows() == [0]


def test_a_statement_with_no_parameters_can_wait(rows):
    with batched_transaction():
        run_prepared("tests_insert_five", "INSERT INTO tests_batch_rows (value) VALUES (5)", [])

    assert rows() == [5]


def test_inside_a_transaction_a_batch_is_a_savepoint(rows):
    with transaction.atomic():
        fetch_prepared("tests_insert", INSERT, [1], many=False)
        with pytest.raises(ZeroDivisionError), batched_transaction():
            fetch_prepared("tests_insert", INSERT, [2], many=False)
            1 / 0  # noqa: B018
        with batched_transaction():
            run_prepared("tests_insert", INSERT, [3])

    assert rows() == [1, 3]


def test_commit_before_next_statement_reads_after_the_commit_in_the_same_round_trip(rows):
    with CaptureQueriesContext(connection) as queries, batched_transaction():
        fetch_prepared("tests_insert", INSERT, [1], many=False)
        run_prepared("tests_insert", INSERT, [2])
        commit_before_next_statement()
        count = fetch_prepared("tests_count", "SELECT count(*) FROM tests_batch_rows WHERE value > $1", [0], many=False)

    assert count == (2,)

    assert len(sent(queries)) == 2
    assert "; COMMIT; EXECUTE tests_count_" in sent(queries)[1]
    assert idle()
    assert rows() == [1, 2]


def test_what_raises_after_the_commit_undoes_nothing(rows):
    with pytest.raises(ZeroDivisionError), batched_transaction():
        run_prepared("tests_insert", INSERT, [1])
        commit_before_next_statement()
        fetch_prepared("tests_insert", INSERT, [2], many=False)  # on its own, after the commit
        1 / 0  # noqa: B018

    assert rows() == [1, 2]
    assert idle()


def test_a_parameter_the_driver_cannot_send_leaves_no_transaction_open(rows):
    with pytest.raises(Exception, match="can't adapt"), batched_transaction():
        fetch_prepared("tests_insert", INSERT, [object()], many=False)

    assert idle()
    assert rows() == []


def test_simultaneous_first_sign_ins_with_one_real_code_create_one_account(outbox, settings):
    settings.AUTH_IP_RATE = "off"
    assert APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 200
    code = code_sent_to(outbox, PHONE)

    def sign_in(_):
        reply = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")
        return reply.status_code, reply.json().get("code"), reply.json().get("created"), idle()

    # Each checks once in a batch, finds no account, lets go of the lock and checks again in atomic().
    results = Counter(run_concurrently(8, sign_in))

    assert results == {(200, None, True, True): 1, (400, "code_expired", None, True): 7}
    assert User.objects.filter(phone=PHONE).count() == 1
    assert OutstandingToken.objects.filter(user__phone=PHONE).count() == 1


def test_signing_in_with_an_account_is_two_round_trips(settings):
    settings.OTP_TEST_PHONES = {PHONE: "1234"}
    settings.AUTH_IP_RATE = "off"  # its counter is a statement of its own
    client = APIClient()
    assert client.post("/api/v1/auth/token/", {"phone": PHONE, "code": "1234"}, format="json").json()["created"]

    with CaptureQueriesContext(connection) as queries:
        reply = client.post("/api/v1/auth/token/", {"phone": PHONE, "code": "1234"}, format="json")

    assert reply.status_code == 200
    assert reply.json()["created"] is False
    assert reply.json()["user"]["phone"] == PHONE
    assert len(sent(queries)) == 2, sent(queries)
    assert sent(queries)[0].startswith("BEGIN; EXECUTE accounts_lock_and_read_phone_")
    assert "; COMMIT; EXECUTE referrals_profile_" in sent(queries)[1]
    assert OutstandingToken.objects.filter(user__phone=PHONE).count() == 2
    assert idle()


def test_a_real_code_is_spent_and_refusals_recorded_by_batched_transactions(outbox, settings):
    settings.AUTH_IP_RATE = "off"
    client = APIClient()
    with CaptureQueriesContext(connection) as queries:
        assert client.post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 200
    # BEGIN with the lock and the listing; the send recorded; COMMIT; after the SMS, the code installed.
    assert len(sent(queries)) == 4, sent(queries)
    assert sent(queries)[2] == "COMMIT"
    code = code_sent_to(outbox, PHONE)
    wrong = f"{(int(code) + 1) % 10000:04d}"

    refused = client.post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json")
    first = client.post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")  # creates the account
    again = client.post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")  # spent

    assert refused.json()["code"] == "invalid_code"
    assert first.status_code == 200
    assert first.json()["created"] is True
    assert again.json()["code"] == "code_expired"
    assert CheckFailure.objects.filter(phone=PHONE).count() == 1  # a spent code leaves nothing to check: not counted
    assert User.objects.filter(phone=PHONE).count() == 1
    assert CodeSend.objects.filter(phone=PHONE).count() == 1
    assert idle()
