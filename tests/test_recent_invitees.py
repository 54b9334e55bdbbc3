"""The profile's 100 newest invitees stay true whatever changes them: activations, phone changes,
deletions, rows loaded in any order, at the same time too. On PostgreSQL the database keeps them in
a table of their own (migrations referrals/0005 and 0006); each test also checks every kept list against the
invitees themselves."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from referrals.models import Referral
from referrals.selectors import PROFILE_INVITEES, _profile_row_orm
from tests.conftest import run_concurrently, wait_until_a_query_waits_on_a_lock
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
                "SELECT r.user_id FROM referrals_referral r"
                " LEFT JOIN referrals_recent_invitees ri ON ri.inviter_id = r.user_id"
                " WHERE ARRAY(SELECT json_array_elements_text(ri.phones)) IS DISTINCT FROM ARRAY("
                " SELECT u.phone::text FROM referrals_referral n JOIN accounts_user u ON u.id = n.user_id"
                " WHERE n.invited_by_id = r.user_id ORDER BY n.activated_at DESC, n.user_id DESC LIMIT %s)"
                " UNION ALL SELECT inviter_id FROM referrals_recent_invitees"
                " WHERE inviter_id NOT IN (SELECT user_id FROM referrals_referral)",
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


def test_a_deleted_inviter_leaves_their_invitees_own_lists_as_they_were(authed, make_user):
    inviter, invitee = make_user(), make_user()
    activate(authed, invitee, code_of(inviter))
    make_invitees(invitee, 3)

    inviter.delete()

    profile = authed(invitee).get("/api/v1/me/").json()
    assert profile["invited_by"] is None
    assert profile["invitees"] == newest_phones(invitee)
    assert len(profile["invitees"]) == 3


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


def while_under_way(first, then, *, waiting=1):
    """`first` in a transaction of another connection, kept open until `waiting` sessions wait for
    a lock; `then` meanwhile, here. Both must finish without an error: neither may need to wait for
    the other in a way that stalls, nor deadlock."""
    done = threading.Event()

    def hold():
        with transaction.atomic():
            first()
            done.set()
            wait_until_a_query_waits_on_a_lock(queries=waiting)

    thread, errors = _in_another_thread(hold)
    assert done.wait(5)
    then()
    thread.join()
    assert errors == []


def set_inviter(user, inviter):
    referral = Referral.objects.select_for_update().get(user=user)
    referral.invited_by_id, referral.activated_at = inviter.pk, timezone.now()
    referral.save(update_fields=["invited_by", "activated_at"])


def set_phone(user, phone):
    User.objects.filter(pk=user.pk).update(phone=phone)


@pytest.mark.postgres
def test_a_phone_changed_while_its_owner_s_activation_is_under_way(authed, make_user):
    # The activation rebuilt the list with the old phone, and the change, reading no inviter yet,
    # would rebuild nothing: it must wait for the activation, then rebuild.
    inviter, invitee = make_user(), make_user("+79110000002")

    while_under_way(lambda: set_inviter(invitee, inviter), lambda: set_phone(invitee, "+79110000079"))

    assert listed(authed, inviter) == ["+79110000079"]


@pytest.mark.postgres
def test_an_activation_while_its_user_s_phone_change_is_under_way(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")

    while_under_way(lambda: set_phone(invitee, "+79110000080"), lambda: activate(authed, invitee, code_of(inviter)))

    assert listed(authed, inviter) == ["+79110000080"]


@pytest.mark.postgres
def test_two_invitees_phones_changed_at_once_both_show(authed, make_user):
    # The second rebuild waits for the first's lock, then reads: a rebuild that read before the
    # wait would put back the first invitee's old phone.
    inviter, first, second = make_user(), make_user("+79110000002"), make_user("+79110000003")
    for invitee in (first, second):
        activate(authed, invitee, code_of(inviter))

    while_under_way(lambda: set_phone(first, "+79110000081"), lambda: set_phone(second, "+79110000082"))

    assert listed(authed, inviter) == ["+79110000082", "+79110000081"]


@pytest.mark.postgres
def test_a_phone_changed_while_a_row_with_its_inviter_is_inserted(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")
    Referral.objects.filter(user=invitee).delete()

    def insert():
        Referral.objects.bulk_create(
            [Referral(user=invitee, invite_code="QQQQQQ", invited_by_id=inviter.pk, activated_at=timezone.now())]
        )

    while_under_way(insert, lambda: set_phone(invitee, "+79110000083"))

    assert listed(authed, inviter) == ["+79110000083"]


@pytest.mark.postgres
def test_an_activation_and_a_phone_change_queued_behind_the_tree_s_root_both_go_through(authed, make_user):
    # Another activation in the tree holds the root; behind it, an activation of the invitee's code
    # (which locks the root, then the invitee's row) and a change of the invitee's phone (which
    # rebuilds the root's list). Neither may hold what the other waits for.
    root, invitee, newcomer = make_user(), make_user("+79110000002"), make_user("+79110000004")
    activate(authed, invitee, code_of(root))
    queued = []

    def queue_behind_the_root():
        thread, errors = _in_another_thread(lambda: activate(authed, newcomer, code_of(invitee)))
        queued.append((thread, errors))
        wait_until_a_query_waits_on_a_lock()
        set_phone(invitee, "+79110000084")

    while_under_way(lambda: Referral.objects.select_for_update().get(user=root), queue_behind_the_root, waiting=2)
    thread, errors = queued[0]
    thread.join()

    assert errors == []
    assert listed(authed, root) == ["+79110000084"]
    assert listed(authed, invitee) == ["+79110000004"]


def test_an_inviter_s_row_inserted_after_its_invitees_rows_gets_their_list(authed, make_user):
    # The inviter key is checked at commit, so rows may come in any order (loaddata, a restore).
    inviter, invitee = make_user(), make_user("+79110000002")
    code = code_of(inviter)
    with transaction.atomic():
        Referral.objects.filter(user=inviter).delete()
        Referral.objects.filter(user=invitee).update(invited_by_id=inviter.pk, activated_at=timezone.now())
        Referral.objects.create(user=inviter, invite_code=code)

    assert listed(authed, inviter) == ["+79110000002"]


def test_an_invitee_s_user_row_inserted_after_their_referral_row_shows(authed, make_user):
    # As loaddata does with a dump that names the referrals before the users.
    inviter = make_user()
    new_id = User.objects.order_by("-pk").first().pk + 1000
    with transaction.atomic():
        Referral.objects.bulk_create(
            [Referral(user_id=new_id, invite_code="QQQQQQ", invited_by_id=inviter.pk, activated_at=timezone.now())]
        )
        User.objects.bulk_create([User(pk=new_id, phone="+79110000085", password="!")])

    assert listed(authed, inviter) == ["+79110000085"]


@pytest.mark.postgres
def test_migrating_a_database_that_has_invitees_fills_their_lists(authed, make_user):
    inviter, invitee = make_user(), make_user("+79110000002")
    activate(authed, invitee, code_of(inviter))
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("referrals", "0005_recent_invitees")])
        with connection.cursor() as cursor:  # 0006 undone: the lists are arrays again, and filled
            cursor.execute("SELECT phones FROM referrals_recent_invitees WHERE inviter_id = %s", [inviter.pk])
            assert cursor.fetchall() == [(["+79110000002"],)]
        executor.loader.build_graph()
        executor.migrate([("referrals", "0004_inviter_key_sets_null_on_delete")])
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        call_command("migrate", verbosity=0)  # whatever happened, the next tests get the whole schema

    assert listed(authed, inviter) == ["+79110000002"]


@pytest.mark.postgres
def test_the_database_keeps_the_lists():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'referrals_recent_invitees'::regclass AND attname = 'phones'"
        )
        assert cursor.fetchall() == [("json",)]  # the reply's JSON, sent as it is
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'referrals_recent_invitees_%' ORDER BY 1")
        assert [name for (name,) in cursor.fetchall()] == [
            "referrals_recent_invitees_deleted",
            "referrals_recent_invitees_inserted",
            "referrals_recent_invitees_phone_changed",
            "referrals_recent_invitees_truncated",
            "referrals_recent_invitees_updated",
            "referrals_recent_invitees_users_added",
        ]
