"""Statements stay on their indexes beside one inviter of most referral rows.

Then the inviter column's statistics count few distinct inviters, and a statement planned without
its inviter (a trigger's, a foreign key's action, a generic plan) expects each inviter to have that
one's thousands of invitees: a full read of the table looked cheaper than the index. Each such
read grows with the table (14 to 67 ms at 120,000 rows). Statistics of a table analyzed while small
did the same to a bulk load. Migrations referrals/0010 and 0011.
"""

import pytest
from django.db import connection
from django.test import Client

from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.referral_graph import make_invitees

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def big_inviter(make_user):
    inviter = make_user()
    make_invitees(inviter, 3000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE referrals_referral")  # as autovacuum would after such a load
        # As every connection of the service plans (project/prepared_statements.py), whatever
        # DATABASE_PREPARED_STATEMENTS says here; for the test's transaction only.
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    return inviter


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def whole_table_reads() -> int:
    """Full reads of the referral table so far in this transaction (the test's own)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'referrals_referral'")
        return cursor.fetchone()[0]


def test_a_first_sign_in_creates_the_account_without_reading_the_whole_table(api, settings, big_inviter):
    settings.OTP_TEST_PHONES = {"+79110000555": "1234"}
    settings.AUTH_IP_RATE = "off"
    before = whole_table_reads()

    reply = api.post("/api/v1/auth/token/", {"phone": "+79110000555", "code": "1234"}, format="json")

    assert reply.status_code == 200
    assert reply.json()["created"] is True
    assert whole_table_reads() == before


def test_deleting_a_user_in_the_admin_reads_no_whole_table(admin_client, make_user, big_inviter):
    inviter, invitee = make_user(), make_user()
    activate_invite_code(user=invitee, code=Referral.objects.get(user=inviter).invite_code)
    before = whole_table_reads()

    for user in (invitee, inviter):
        reply = admin_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"})
        assert reply.status_code == 302

    assert not Referral.objects.filter(user__in=[inviter, invitee]).exists()
    assert whole_table_reads() == before


def test_a_small_invite_tree_in_the_admin_reads_no_whole_table(admin_client, make_user, big_inviter):
    inviter, invitee = make_user(), make_user()
    activate_invite_code(user=invitee, code=Referral.objects.get(user=inviter).invite_code)
    before = whole_table_reads()

    reply = admin_client.get(f"/admin/accounts/user/{inviter.pk}/invite-tree/")

    assert reply.status_code == 200
    assert invitee.phone in reply.content.decode()
    assert whole_table_reads() == before


def test_a_bulk_load_after_the_table_was_analyzed_small_reads_no_whole_table(make_user):
    # Planned while the table was small, 0005's search for a new row's own invitees read the whole
    # table once per new row: a bulk load grew slower with every batch (migration referrals/0010).
    make_invitees(make_user(), 100, phone_prefix="+7913")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE referrals_referral")  # as autovacuum does early in a new database
    before = whole_table_reads()

    make_invitees(make_user(), 6000)  # two statements of 5,000 and 1,000 rows

    assert whole_table_reads() == before
    assert Referral.objects.filter(invited_by__isnull=False).count() == 6100
