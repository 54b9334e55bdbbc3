"""The profile's 100 newest invitees stay true whatever changes them: activations, phone changes,
deletions, at the same time too. On PostgreSQL the database keeps them on the referral row
(migration referrals/0005); each test also checks every kept list against the invitees themselves."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from referrals.models import Referral
from referrals.selectors import PROFILE_INVITEES, _profile_row_orm
from tests.conftest import run_concurrently
from tests.referral_graph import make_invitees

pytestmark = pytest.mark.django_db(transaction=True)


def code_of(user):
    return Referral.objects.get(user=user).invite_code


def activate(authed, user, code):
    response = authed(user).post("/api/v1/me/invite/", {"invite_code": code}, format="json")
    assert response.status_code == 200, response.json()


def listed(authed, user):
    return authed(user).get("/api/v1/me/").json()["invitees"]


def newest_phones(user):
    """What the profile must list: read through the invitees, as the ORM path does."""
    return _profile_row_orm(user.pk)[-1]


@pytest.fixture(autouse=True)
def every_kept_list_is_true(transactional_db):  # checked before the test's rows are flushed
    yield
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.user_id FROM referrals_referral r WHERE r.recent_invitees IS DISTINCT FROM ARRAY("
                " SELECT u.phone FROM referrals_referral n JOIN accounts_user u ON u.id = n.user_id"
                " WHERE n.invited_by_id = r.user_id ORDER BY n.activated_at DESC, n.user_id DESC LIMIT %s)",
                [PROFILE_INVITEES],
            )
            assert cursor.fetchall() == []


def test_the_profile_lists_the_newest_100_newest_first(authed, make_user):
    inviter, newest = make_user(), make_user("+79990000001")
    make_invitees(inviter, PROFILE_INVITEES + 5)
    activate(authed, newest, code_of(inviter))

    phones = listed(authed, inviter)

    assert len(phones) == PROFILE_INVITEES
    assert phones[0] == "+79990000001"
    assert phones[1:] == [f"+7912{i:07d}" for i in range(PROFILE_INVITEES + 4, 5, -1)]
    assert phones == newest_phones(inviter)


def test_an_invitee_s_new_phone_shows_in_the_inviter_s_profile(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")
    activate(authed, invitee, code_of(inviter))
    admin = Client()
    admin.force_login(make_user("+79000000001", is_staff=True, is_superuser=True))

    response = admin.post(
        reverse("admin:accounts_user_change", args=[invitee.pk]),
        {"phone": "+7 911 000 00 77", "is_active": "on", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert listed(authed, inviter) == ["+79110000077"]


def test_a_phone_changed_by_a_raw_statement_shows_too(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")
    activate(authed, invitee, code_of(inviter))

    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET phone = %s WHERE id = %s", ["+79110000078", invitee.pk])

    assert listed(authed, inviter) == ["+79110000078"]


def test_a_deleted_invitee_leaves_and_the_next_oldest_moves_up(authed, make_user):
    inviter = make_user()
    make_invitees(inviter, PROFILE_INVITEES + 1)
    User.objects.get(phone=f"+7912{PROFILE_INVITEES:07d}").delete()  # the newest

    phones = listed(authed, inviter)

    assert phones == [f"+7912{i:07d}" for i in range(PROFILE_INVITEES - 1, -1, -1)]


def test_a_deleted_inviter_leaves_invitees_with_empty_lists_of_their_own(authed, make_user):
    inviter, invitee = make_user(), make_user()
    activate(authed, invitee, code_of(inviter))
    make_invitees(invitee, 3)

    inviter.delete()

    profile = authed(invitee).get("/api/v1/me/").json()
    assert profile["invited_by"] is None
    assert profile["invitees"] == newest_phones(invitee)
    assert len(profile["invitees"]) == 3


def test_saving_a_referral_loaded_before_an_activation_keeps_the_new_invitee(authed, make_user):
    # The list is not on the model, so an old copy of the row saved back cannot bring back an old list.
    inviter, invitee = make_user(), make_user("+79110000002")
    loaded = Referral.objects.get(user=inviter)
    activate(authed, invitee, code_of(inviter))

    loaded.save()

    assert listed(authed, inviter) == ["+79110000002"]


def test_a_moved_activation_moment_reorders_the_list(authed, make_user):
    inviter = make_user()
    make_invitees(inviter, 3)  # +79120000002 is the newest
    oldest = User.objects.get(phone="+79120000000")

    Referral.objects.filter(user=oldest).update(activated_at=timezone.now())

    assert listed(authed, inviter) == ["+79120000000", "+79120000002", "+79120000001"]


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(5))
def test_eight_invitees_activating_one_code_at_once_are_all_listed(authed, make_user, round_):
    inviter = make_user()
    invitees = [make_user(f"+7911100000{i}") for i in range(8)]
    code = code_of(inviter)

    statuses = run_concurrently(
        8, lambda i: authed(invitees[i]).post("/api/v1/me/invite/", {"invite_code": code}, format="json")
    )

    assert [response.status_code for response in statuses] == [200] * 8
    assert sorted(listed(authed, inviter)) == sorted(user.phone for user in invitees)
    assert listed(authed, inviter) == newest_phones(inviter)


def _in_another_thread(work):
    errors = []

    def run():
        try:
            work()
        except Exception as exc:  # handed to the test, which asserts there was none
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _wait_until_blocked(sessions: int) -> None:
    """Until `sessions` sessions wait for a lock (at most 5 seconds)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0] >= sessions:
                return
        time.sleep(0.01)
    raise AssertionError("the other session never waited for the lock")


@pytest.mark.postgres
def test_a_phone_changed_while_its_owner_s_activation_is_under_way(authed, make_user):
    # The activation rebuilds the list with the old phone; the phone's change, committed after it,
    # must wait for the activation and rebuild the list again. Read before the activation
    # committed, the invitee had no inviter yet and nothing would have been rebuilt.
    inviter, invitee = make_user(), make_user("+79110000002")
    activated = threading.Event()

    def activation():
        with transaction.atomic():
            referral = Referral.objects.select_for_update().get(user=invitee)
            referral.invited_by_id, referral.activated_at = inviter.pk, timezone.now()
            referral.save(update_fields=["invited_by", "activated_at"])
            activated.set()
            _wait_until_blocked(1)

    thread, errors = _in_another_thread(activation)
    assert activated.wait(5)
    User.objects.filter(pk=invitee.pk).update(phone="+79110000079")
    thread.join()

    assert errors == []
    assert listed(authed, inviter) == ["+79110000079"]


@pytest.mark.postgres
def test_an_activation_while_its_user_s_phone_change_is_under_way(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")
    changed = threading.Event()

    def phone_change():
        with transaction.atomic():
            User.objects.filter(pk=invitee.pk).update(phone="+79110000080")
            changed.set()
            _wait_until_blocked(1)

    thread, errors = _in_another_thread(phone_change)
    assert changed.wait(5)
    activate(authed, invitee, code_of(inviter))
    thread.join()

    assert errors == []
    assert listed(authed, inviter) == ["+79110000080"]


@pytest.mark.postgres
def test_the_database_keeps_the_lists():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'referrals_recent_invitees_%' ORDER BY 1")
        assert [name for (name,) in cursor.fetchall()] == [
            "referrals_recent_invitees_deleted",
            "referrals_recent_invitees_inserted",
            "referrals_recent_invitees_phone_changed",
            "referrals_recent_invitees_updated",
        ]
