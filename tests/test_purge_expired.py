"""`manage.py purge_expired`: what no longer counts goes, what still counts stays."""

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge
from tests.conftest import code_sent_to, wait_until_a_query_waits_on_a_lock

pytestmark = pytest.mark.django_db

PHONE = "+79110000001"


def purge() -> str:
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    return out.getvalue()


def test_sends_refusals_budgets_and_tokens_past_their_use_go(api, outbox, make_user):
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CodeSend.objects.create(phone="+79110000002", sent_at=day_ago)
    CheckFailure.objects.create(phone="+79110000002", failed_at=day_ago)
    HourlySendBudget.objects.create(hour=day_ago.replace(minute=0, second=0, microsecond=0), used=3)
    user = make_user()
    expired = OutstandingToken.objects.create(user=user, jti="old", token="x", expires_at=day_ago)
    BlacklistedToken.objects.create(token=expired)

    report = purge()

    assert not CodeSend.objects.exists()
    assert not CheckFailure.objects.exists()
    assert not HourlySendBudget.objects.exists()
    assert not OutstandingToken.objects.exists()
    assert not BlacklistedToken.objects.exists()
    assert report == (
        "Deleted 1 code send(s), 1 refused check(s), 1 hourly budget(s), 0 phone(s) without a live code "
        "and 1 expired refresh token(s).\n"
    )


def test_what_still_counts_stays_and_still_limits(api, outbox, make_user):
    assert api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 200
    wrong = f"{(int(code_sent_to(outbox, PHONE)) + 1) % 10000:04d}"
    assert api.post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json").status_code == 400
    live = OutstandingToken.objects.create(
        user=make_user(), jti="live", token="x", expires_at=timezone.now() + timedelta(days=1)
    )

    purge()

    assert CodeSend.objects.filter(phone=PHONE).count() == 1
    assert CheckFailure.objects.filter(phone=PHONE).count() == 1
    assert HourlySendBudget.objects.get().used == 1
    assert OutstandingToken.objects.filter(pk=live.pk).exists()
    again = api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")
    assert again.status_code == 429  # the minute between two codes still holds


def test_phones_without_a_live_code_lose_their_row_and_a_live_code_still_works(api, outbox, settings):
    settings.OTP_MAX_ATTEMPTS = 1
    # A guess for a phone that never got a code leaves a row with none.
    guess = api.post("/api/v1/auth/token/", {"phone": "+79110000002", "code": "0000"}, format="json")
    assert guess.status_code == 400
    # A code killed by its wrong guesses, while it would still be alive by the clock.
    api.post("/api/v1/auth/code/", {"phone": "+79110000003"}, format="json")
    wrong = f"{(int(code_sent_to(outbox, '+79110000003')) + 1) % 10000:04d}"
    api.post("/api/v1/auth/token/", {"phone": "+79110000003", "code": wrong}, format="json")
    # Codes that expired a day ago and just now: the second may be alive by another server's clock.
    for phone, expired in (("+79110000004", timedelta(hours=24, seconds=1)), ("+79110000005", timedelta(seconds=1))):
        api.post("/api/v1/auth/code/", {"phone": phone}, format="json")
        PhoneChallenge.objects.filter(phone=phone).update(expires_at=timezone.now() - expired)
    api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")

    report = purge()

    assert sorted(PhoneChallenge.objects.values_list("phone", flat=True)) == [PHONE, "+79110000005"]
    assert "3 phone(s) without a live code" in report
    code = code_sent_to(outbox, PHONE)
    assert api.post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json").status_code == 200


def test_a_phone_locked_by_refused_checks_stays_locked_without_its_row(api, outbox, settings):
    settings.OTP_FAILURES_PER_DAY = 1
    api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")
    wrong = f"{(int(code_sent_to(outbox, PHONE)) + 1) % 10000:04d}"
    assert api.post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json").status_code == 400
    PhoneChallenge.objects.update(expires_at=timezone.now() - timedelta(hours=24, seconds=1))

    purge()

    assert not PhoneChallenge.objects.exists()
    assert api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 429
    assert api.post("/api/v1/auth/token/", {"phone": PHONE, "code": "0000"}, format="json").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_code_whose_row_went_while_its_sms_was_on_the_way_still_works(api, outbox, settings):
    settings.SMS_BACKEND = "tests.sms_doubles.PurgingBackend"

    assert api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 200

    code = code_sent_to(outbox, PHONE)
    signed_in = api.post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")
    assert signed_in.status_code == 200, signed_in.json()


# A test-only pause: a session that sets tests.pause_inserts waits, before each row it inserts into
# accounts_phonechallenge, for the advisory lock that the test holds.
PAUSE_INSERTS = """
CREATE FUNCTION tests_pause_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tests.pause_inserts', true) = 'on' THEN PERFORM pg_advisory_xact_lock(4242); END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tests_pause_insert BEFORE INSERT ON accounts_phonechallenge
FOR EACH ROW EXECUTE FUNCTION tests_pause_insert();
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_phone_lock_inserts_again_when_the_row_it_met_goes_before_it_can_lock_it():
    """accounts_lock_phone() finds no row, meets another request's new one as it inserts its own,
    and the purge deletes that one before the function can lock it."""
    found = {}

    def lock_phone():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET tests.pause_inserts = 'on'")
                cursor.execute("SELECT locked_id FROM accounts_lock_phone(%s, NULL)", [PHONE])
                found["row"] = cursor.fetchone()
        finally:
            connections.close_all()

    with connection.cursor() as cursor:
        cursor.execute(PAUSE_INSERTS)
        cursor.execute("SELECT pg_advisory_lock(4242)")
    try:
        locker = threading.Thread(target=lock_phone)
        locker.start()
        wait_until_a_query_waits_on_a_lock(kinds=["advisory"])  # it found no row and is about to insert one
        PhoneChallenge.objects.create(phone=PHONE)  # another request's
        with transaction.atomic():  # the purge's batch
            PhoneChallenge.objects.select_for_update().get(phone=PHONE)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(4242)")
            wait_until_a_query_waits_on_a_lock(kinds=["transactionid", "tuple"])  # it met the row and waits to lock it
            PhoneChallenge.objects.filter(phone=PHONE).delete()
        locker.join()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")
            cursor.execute("DROP TRIGGER tests_pause_insert ON accounts_phonechallenge")
            cursor.execute("DROP FUNCTION tests_pause_insert()")

    assert found["row"] is not None
    assert PhoneChallenge.objects.filter(pk=found["row"][0], phone=PHONE).exists()


def test_rows_go_a_batch_at_a_time_until_none_is_left(monkeypatch):
    monkeypatch.setattr("accounts.management.commands.purge_expired.BATCH", 2)
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CodeSend.objects.bulk_create(CodeSend(phone=f"+7911000000{i}", sent_at=day_ago) for i in range(5))

    with CaptureQueriesContext(connection) as queries:
        report = purge()

    assert "Deleted 5 code send(s)" in report
    assert not CodeSend.objects.exists()
    deletes = [query["sql"] for query in queries if query["sql"].startswith('DELETE FROM "accounts_codesend"')]
    assert len(deletes) == 3  # 2, 2 and 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_purge_passes_over_a_row_that_a_request_holds_locked():
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    held = CodeSend.objects.bulk_create([CodeSend(phone=PHONE, sent_at=day_ago) for _ in range(2)])[0]
    locked, done = threading.Event(), threading.Event()

    def hold_a_lock():  # as a code request of the phone does, deleting its old sends
        try:
            with transaction.atomic():
                CodeSend.objects.select_for_update().get(pk=held.pk)
                locked.set()
                done.wait(10)
        finally:
            connections.close_all()

    request = threading.Thread(target=hold_a_lock)
    request.start()
    try:
        assert locked.wait(10)
        report = purge()
    finally:
        done.set()
        request.join()

    assert "Deleted 1 code send(s)" in report
    assert list(CodeSend.objects.values_list("pk", flat=True)) == [held.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_phone_lock_gives_up_on_a_phone_it_could_never_find():
    # Past 16 characters varchar(16) drops trailing spaces: the row it inserts never matches.
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '10s'")  # without a bound, it would try until then
        with pytest.raises(DatabaseError, match="no row to lock after 3 inserts"):
            cursor.execute("SELECT locked_id FROM accounts_lock_phone(%s, NULL)", [PHONE + " " * 10])
        cursor.execute("RESET statement_timeout")
