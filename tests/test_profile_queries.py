"""The profile and invitee pages cost the same number of queries for 1 invitee and for 100,000."""

import importlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from referrals.selectors import INVITEE_PAGE_SQL
from tests.referral_graph import make_invitees

pytestmark = pytest.mark.django_db

# What the database runs to rebuild a profile's newest invitees, for the inviter $1.
NEWEST_INVITEES_SQL = re.sub(
    r"\binviter\b", "$1", importlib.import_module("referrals.migrations.0005_recent_invitees").NEWEST_INVITEES
)


@pytest.mark.parametrize(
    "invitee_count", [1, pytest.param(100_000, marks=pytest.mark.postgres, id="100k")]
)  # fmt: skip
def test_query_count_is_constant(authed, invitee_count, django_assert_max_num_queries):
    client = authed()
    make_invitees(client.user, invitee_count)

    # One statement on PostgreSQL (user, inviter, counter and the newest invitees); two elsewhere.
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 2):
        profile = client.get("/api/v1/me/")
    with django_assert_max_num_queries(1):  # one page by index range
        first_page = client.get("/api/v1/me/invitees/")

    assert profile.json()["invitees_count"] == invitee_count
    assert len(profile.json()["invitees"]) == min(100, invitee_count)
    assert len(first_page.json()["results"]) == min(50, invitee_count)
    if invitee_count <= 50:
        assert first_page.json()["next"] is None
        return
    with django_assert_max_num_queries(1):  # a page by its cursor, however deep
        second_page = client.get(first_page.json()["next"])
    assert len(second_page.json()["results"]) == 50


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        NEWEST_INVITEES_SQL,
        INVITEE_PAGE_SQL.format(position="", direction="DESC", offset=0, limit=51),
        INVITEE_PAGE_SQL.format(position=" AND r.activated_at < $2", direction="DESC", offset=0, limit=101),
        INVITEE_PAGE_SQL.format(position=" AND r.activated_at > $2", direction="ASC", offset=7, limit=51),
    ],
    ids=["profile's newest invitees", "first page", "next page", "previous page with offset"],
)
def test_the_statements_served_read_the_newest_first_index_without_sorting(authed, statement):
    client = authed()
    make_invitees(client.user, 20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE referrals_referral")
        cursor.execute(f"PREPARE tests_plan AS {statement}")
        params = [client.user.pk, timezone.now() - timedelta(hours=1)][: statement.count("$2") + 1]
        cursor.execute(f"EXPLAIN EXECUTE tests_plan({', '.join(['%s'] * len(params))})", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE tests_plan")

    assert "referral_invitees_newest" in plan, plan
    assert "Sort" not in plan, plan
