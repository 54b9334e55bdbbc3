"""An inviter's invitees_count agrees with their invitees on every path that adds, moves or removes one.

The profile's count, its newest invitees and the invitee pages are read through the API; the
changes are the ones an operator makes outside it (a restore, a bulk load, a raw statement).
"""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.referral_graph import make_invitees

pytestmark = pytest.mark.django_db(transaction=True)


def code_of(user):
    return Referral.objects.get(user=user).invite_code


def listed(authed, user) -> tuple[int, list[str], list[str]]:
    """The profile's count and newest invitees, and every phone of the pages, as `user` sees them."""
    client = authed(user)
    profile = client.get("/api/v1/me/").json()
    phones, url = [], "/api/v1/me/invitees/?page_size=2"
    while url:
        page = client.get(url).json()
        phones += [row["phone"] for row in page["results"]]
        url = page["next"]
    return profile["invitees_count"], profile["invitees"], phones


def test_a_user_restored_from_a_dump_is_counted_again(authed, make_user, tmp_path):
    inviter, invitee = make_user(), make_user()
    activate_invite_code(user=invitee, code=code_of(inviter))
    users, rows = io.StringIO(), io.StringIO()
    call_command("dumpdata", "accounts.user", pks=str(invitee.pk), stdout=users)
    call_command("dumpdata", "referrals.referral", pks=str(invitee.pk), stdout=rows)
    invitee.delete()
    assert listed(authed, inviter) == (0, [], [])

    for name, fixture in (("user", users), ("referral", rows)):
        path = tmp_path / f"{name}.json"
        path.write_text(fixture.getvalue())
        call_command("loaddata", str(path), verbosity=0)

    assert listed(authed, inviter) == (1, [invitee.phone], [invitee.phone])


def test_a_whole_dump_loaded_into_an_empty_database_keeps_its_counts(authed, make_user, tmp_path):
    # Rows come in primary-key order, so an inviter comes with its count before its invitees
    # (each of which adds itself), or after them (which it then counts): either way, once.
    early, late = make_user(), make_user()
    invitees = [make_user() for _ in range(3)]
    for invitee in invitees[:2]:
        activate_invite_code(user=invitee, code=code_of(early))
    late_invitee = make_user()
    activate_invite_code(user=late_invitee, code=code_of(late))
    path = tmp_path / "dump.json"
    call_command("dumpdata", "accounts.user", "referrals.referral", output=str(path), verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM referrals_referral")
    User.objects.all().delete()

    call_command("loaddata", str(path), verbosity=0)

    assert listed(authed, User.objects.get(pk=early.pk))[0] == 2
    assert listed(authed, User.objects.get(pk=late.pk))[0] == 1
    assert listed(authed, User.objects.get(pk=invitees[2].pk))[0] == 0


def test_an_inviter_loaded_after_its_invitees_counts_them(authed, make_user):
    inviter_user = User.objects.bulk_create([User(phone="+79110000777", password="!")])[0]
    invitees = [make_user() for _ in range(2)]
    now = timezone.now()
    with transaction.atomic():  # the inviter's key is checked at commit: its row may come last
        for i, invitee in enumerate(invitees):
            Referral.objects.filter(pk=invitee.pk).update(
                invited_by_id=inviter_user.pk, activated_at=now - timedelta(i)
            )
        Referral.objects.bulk_create([Referral(user=inviter_user, invite_code="QQQQQQ", invitees_count=57)])

    count, newest, pages = listed(authed, inviter_user)

    assert count == 2
    assert sorted(newest) == sorted(pages) == sorted(invitee.phone for invitee in invitees)


def test_invitees_loaded_in_bulk_are_counted_once(authed, make_user):
    inviter = make_user()
    make_invitees(inviter, 250)
    activate_invite_code(user=make_user(), code=code_of(inviter))

    count, newest, pages = listed(authed, inviter)

    assert count == len(pages) == 251
    assert newest == pages[:100]


def test_moving_an_invitee_to_another_inviter_moves_the_count(authed, make_user):
    first, second, invitee = make_user(), make_user(), make_user()
    activate_invite_code(user=invitee, code=code_of(first))

    Referral.objects.filter(pk=invitee.pk).update(invited_by_id=second.pk)

    assert listed(authed, first) == (0, [], [])
    assert listed(authed, second) == (1, [invitee.phone], [invitee.phone])
    with connection.cursor() as cursor:  # and back, by a raw statement
        cursor.execute("UPDATE referrals_referral SET invited_by_id = %s WHERE user_id = %s", [first.pk, invitee.pk])
    assert listed(authed, first)[0] == 1
    assert listed(authed, second)[0] == 0


def test_clearing_an_inviter_uncounts_the_invitee(authed, make_user):
    inviter, invitee = make_user(), make_user()
    activate_invite_code(user=invitee, code=code_of(inviter))

    Referral.objects.filter(pk=invitee.pk).update(invited_by_id=None)

    assert listed(authed, inviter) == (0, [], [])


def test_an_activation_through_the_api_counts_once(authed, make_user):
    inviter, client = make_user(), authed()
    for _ in range(2):  # the retry is idempotent
        assert client.post("/api/v1/me/invite/", {"invite_code": code_of(inviter)}, format="json").status_code == 200

    assert listed(authed, inviter) == (1, [client.user.phone], [client.user.phone])


def test_an_invitee_cannot_be_kept_without_its_activation_moment(make_user):
    inviter, invitee = make_user(), make_user()

    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.filter(pk=invitee.pk).update(invited_by_id=inviter.pk)


def test_an_inviter_with_a_short_count_can_still_be_deleted(make_user):
    # A count written over by hand (loaddata over a row still there) may be short; deleting the
    # inviter clears its invitees' inviter first, which must not take the count below 0.
    inviter, invitee = make_user(), make_user()
    activate_invite_code(user=invitee, code=code_of(inviter))
    Referral.objects.filter(pk=inviter.pk).update(invitees_count=0)

    inviter.delete()

    assert Referral.objects.get(pk=invitee.pk).invited_by_id is None


def test_a_row_that_invites_itself_counts_once(make_user):
    user = make_user()
    Referral.objects.filter(pk=user.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO referrals_referral (user_id, invite_code, activated_at, invitees_count, invited_by_id) "
            "VALUES (%s, 'SELFSS', %s, 0, %s)",
            [user.pk, timezone.now(), user.pk],
        )

    assert Referral.objects.get(pk=user.pk).invitees_count == 1


@pytest.mark.postgres
def test_no_trigger_joins_its_transition_tables():
    # PL/pgSQL plans a trigger's statement for the first transition tables of a session: a join
    # planned for an activation's one row ran as a nested loop over a later 10,000-row update (14 s;
    # migration referrals/0009). Aggregates over them stay linear whatever the plan.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname IN "
            "('referrals_count_invitees', 'referrals_recent_invitees_changed') ORDER BY proname"
        )
        functions = cursor.fetchall()

    assert [name for name, _ in functions] == ["referrals_count_invitees", "referrals_recent_invitees_changed"]
    for name, source in functions:
        for table in ("new_rows", "old_rows"):
            assert f"JOIN {table}" not in source, name
            assert f"FROM {table} x" not in source, name
