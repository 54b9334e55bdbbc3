"""Activation rules under real concurrent requests: threads with their own connections."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models.signals import pre_delete
from rest_framework.test import APIClient

from accounts.models import User
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.conftest import run_concurrently, wait_until_a_query_waits_on_a_lock
from tests.referral_graph import assert_forest, inviter_map

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 20


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def activate(user, code):
    response = client_for(user).post("/api/v1/me/invite/", {"invite_code": code}, format="json")
    return response.status_code, response.json().get("code")


def code_of(user):
    return Referral.objects.get(user=user).invite_code


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_one_user_activating_twelve_codes_at_once_gets_one(make_user, round_):
    user = make_user()
    codes = [code_of(make_user()) for _ in range(12)]

    results = run_concurrently(12, lambda i: activate(user, codes[i]))

    assert Counter(status for status, _ in results) == {200: 1, 409: 11}
    assert Referral.objects.filter(invited_by__isnull=False).count() == 1
    assert sum(Referral.objects.values_list("invitees_count", flat=True)) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_four_cycle_race_gives_one_activation_and_one_cycle(make_user, round_):
    a, b, c, d = (make_user() for _ in range(4))
    assert activate(b, code_of(c))[0] == 200  # B invited by C
    assert activate(d, code_of(a))[0] == 200  # D invited by A
    moves = [(a, code_of(b)), (c, code_of(d))]  # together they would close A->B->C->D->A

    results = run_concurrently(2, lambda i: activate(*moves[i]))

    assert sorted(results, key=str) == sorted([(200, None), (400, "invite_cycle")], key=str)
    assert_forest(inviter_map())


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_users_activating_each_other_at_once_give_one(make_user, round_):
    a, b = make_user(), make_user()
    moves = [(a, code_of(b)), (b, code_of(a))]

    results = run_concurrently(2, lambda i: activate(*moves[i]))

    assert sorted(results, key=str) == sorted([(200, None), (400, "invite_cycle")], key=str)
    assert_forest(inviter_map())


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(10))
def test_many_users_racing_in_a_ring_never_close_it(make_user, round_):
    users = [make_user() for _ in range(8)]
    codes = [code_of(user) for user in users]

    results = run_concurrently(8, lambda i: activate(users[i], codes[(i + 1) % 8]))

    assert Counter(status for status, _ in results) == {200: 7, 400: 1}
    assert_forest(inviter_map())


def test_concurrent_activations_wait_on_any_database(make_user):
    """On SQLite too: writers queue, and "database is locked" never reaches a client."""
    inviter = make_user()
    users = [make_user() for _ in range(6)]
    code = code_of(inviter)

    results = run_concurrently(6, lambda i: activate(users[i], code))

    assert [status for status, _ in results] == [200] * 6
    assert Referral.objects.get(pk=inviter.pk).invitees_count == 6


@pytest.mark.postgres
def test_deleting_a_user_while_they_activate_a_code_uncounts_them(make_user):
    inviter, invitee = make_user(), make_user()
    deleting = threading.Thread(target=lambda: run_concurrently(1, lambda _: User.objects.get(pk=invitee.pk).delete()))

    with transaction.atomic():  # the activation, still to commit when the deletion reads the row
        activate_invite_code(user=invitee, code=code_of(inviter))
        deleting.start()
        wait_until_a_query_waits_on_a_lock()
    deleting.join()

    assert not User.objects.filter(pk=invitee.pk).exists()
    assert Referral.objects.get(pk=inviter.pk).invitees_count == 0


@pytest.mark.postgres
def test_a_user_deleted_twice_at_once_is_uncounted_once(make_user):
    inviter, invitee, other = make_user(), make_user(), make_user()
    for user in (invitee, other):
        activate_invite_code(user=user, code=code_of(inviter))
    first, second = User.objects.get(pk=invitee.pk), User.objects.get(pk=invitee.pk)

    run_concurrently(2, lambda i: (first, second)[i].delete())

    assert Referral.objects.get(pk=inviter.pk).invitees_count == 1
    assert Referral.objects.filter(invited_by_id=inviter.pk).count() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("inviter_first", [True, False])
def test_an_inviter_and_their_invitee_deleted_at_once_both_go(make_user, inviter_first):
    # Each deletion locks the other's row too (one clears the invitee's inviter, the other
    # uncounts the inviter): they must take them in the same order, or one of them deadlocks.
    users = [make_user(), make_user()]
    inviter, invitee = users if inviter_first else users[::-1]
    activate_invite_code(user=invitee, code=code_of(inviter))
    both_collected = threading.Barrier(2, timeout=10)

    def wait_for_the_other(sender, instance, **kwargs):
        both_collected.wait()  # after each has read what it deletes, before it writes

    pre_delete.connect(wait_for_the_other, sender=User, dispatch_uid="tests.wait_for_the_other")
    try:
        run_concurrently(2, lambda i: User.objects.get(pk=(inviter, invitee)[i].pk).delete())
    finally:
        pre_delete.disconnect(sender=User, dispatch_uid="tests.wait_for_the_other")

    assert not User.objects.filter(pk__in=[inviter.pk, invitee.pk]).exists()
    assert not Referral.objects.filter(pk__in=[inviter.pk, invitee.pk]).exists()


@pytest.mark.postgres
def test_deleting_an_inviter_while_someone_activates_their_code(make_user):
    # The deletion clears its invitees' inviter before it deletes; one whose activation commits
    # while the DELETE waits for the inviter's row is cleared by the foreign key itself.
    root, inviter, newcomer = make_user(), make_user(), make_user()
    activate_invite_code(user=inviter, code=code_of(root))
    deleting = threading.Thread(target=lambda: run_concurrently(1, lambda _: User.objects.get(pk=inviter.pk).delete()))

    with transaction.atomic():
        activate_invite_code(user=newcomer, code=code_of(inviter))
        deleting.start()
        wait_until_a_query_waits_on_a_lock()
    deleting.join()

    assert not User.objects.filter(pk=inviter.pk).exists()
    newcomer_referral = Referral.objects.get(pk=newcomer.pk)
    assert (newcomer_referral.invited_by_id, newcomer_referral.activated_at is not None) == (None, True)
    assert Referral.objects.get(pk=root.pk).invitees_count == 0


def deadlock_timeout() -> float:
    """Seconds a lock waits before PostgreSQL looks for a deadlock (1 by default)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::float / 1000 FROM pg_settings WHERE name = 'deadlock_timeout'")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_an_activation_that_deadlocks_with_a_deletion_runs_again(make_user):
    # The activation locks its rows in primary-key order (root, itself, inviter); deleting the
    # inviter locks the inviter's row, then the root's to uncount it. PostgreSQL breaks such a
    # cycle by failing whichever finds it: here the activation, which then runs again.
    root, newcomer, inviter = make_user(), make_user(), make_user()
    activate_invite_code(user=inviter, code=code_of(root))
    code, answers = code_of(inviter), []
    activating = threading.Thread(
        target=lambda: answers.extend(run_concurrently(1, lambda _: activate(newcomer, code)))
    )
    deleting = threading.Thread(target=lambda: run_concurrently(1, lambda _: User.objects.get(pk=inviter.pk).delete()))

    with transaction.atomic():
        Referral.objects.select_for_update().get(pk=newcomer.pk)
        activating.start()  # locks the root's row, then waits here for the newcomer's
        wait_until_a_query_waits_on_a_lock()
        deleting.start()  # deletes the inviter's row, then waits for the root's
        wait_until_a_query_waits_on_a_lock(queries=2)
        time.sleep(deadlock_timeout() + 0.5)  # the deletion looked for a cycle while there was none
    # The activation goes on to the inviter's row, closes the cycle, and finds it.
    activating.join()
    deleting.join()

    assert answers == [(400, "invite_code_not_found")]  # its second run finds the code's owner gone
    assert not User.objects.filter(pk=inviter.pk).exists()
    assert Referral.objects.get(pk=newcomer.pk).invited_by_id is None
    assert Referral.objects.get(pk=root.pk).invitees_count == 0
