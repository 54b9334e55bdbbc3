"""Pages outside the API (the admin, the demo) while the database is away: a 503 page to try again
later, as the API answers 503 `service_unavailable`, not a 500."""

import pytest
from django.db import connection
from django.test import Client

from tests.conftest import drop_this_connection
from tests.test_database_read_only import set_read_only

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff(make_user):
    client = Client(raise_request_exception=False)
    client.force_login(make_user("+79000000002", is_staff=True, is_superuser=True))
    return client


def test_a_page_whose_connection_the_database_dropped_is_a_503(staff):
    staff.get("/admin/")
    drop_this_connection()  # a restart or a failover: the worker's connection is gone

    dropped = staff.get("/admin/accounts/user/", HTTP_ACCEPT_LANGUAGE="ru")
    connection.close()  # as Django does after the request; the test client leaves it to the test

    assert dropped.status_code == 503
    assert dropped["Retry-After"] == "5"
    assert "Сервис временно недоступен" in dropped.content.decode()


def test_a_write_refused_by_a_read_only_database_is_a_503(staff, make_user):
    user = make_user("+79110000001")
    set_read_only("on")
    try:
        refused = staff.post("/admin/accounts/user/", {"action": "sign_out_everywhere", "_selected_action": [user.pk]})
    finally:
        set_read_only("off")

    assert refused.status_code == 503
    assert refused["Retry-After"] == "5"
