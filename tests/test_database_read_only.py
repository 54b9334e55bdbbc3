"""A database that answers but refuses writes: a standby after a failover, or a host that made it
read-only (a full disk on a managed database). Clients are told to try again, as in an outage."""

import psycopg2
import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import assert_sign_in_unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def set_read_only(value: str) -> None:
    params = {**connection.get_connection_params(), "options": "-c default_transaction_read_only=off"}
    other = psycopg2.connect(**params)
    other.autocommit = True
    try:
        with other.cursor() as cursor:
            name = connection.settings_dict["NAME"]
            cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
    finally:
        other.close()
    connection.close()  # the setting reaches new sessions only


@pytest.fixture
def read_only_database():
    set_read_only("on")
    try:
        yield
    finally:
        set_read_only("off")


@pytest.mark.parametrize("ip_rate", ["30/minute", "off"])  # counted in the database first, or not at all
def test_a_read_only_database_is_a_json_503_not_a_500(read_only_database, settings, ip_rate):
    settings.AUTH_IP_RATE = ip_rate
    assert_sign_in_unavailable(APIClient(REMOTE_ADDR="203.0.113.21"), "+79110000021")


@pytest.mark.parametrize("debug", [False, True])  # with DEBUG on, Django answers other pages' errors itself
def test_the_admin_password_form_on_a_read_only_database_is_a_503_not_a_500(read_only_database, settings, debug):
    settings.DEBUG = debug
    settings.AUTH_IP_RATE = "30/minute"  # its counter is a database row without REDIS_URL
    settings.REDIS_URL = ""
    client = Client(REMOTE_ADDR="203.0.113.22")
    client.raise_request_exception = False

    response = client.post("/admin/login/", {"username": "+79110000000", "password": "x"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
