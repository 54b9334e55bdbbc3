"""A database connection lost while the SMS provider takes its time (a restart, a failover)."""

import pytest
from rest_framework.test import APIClient

from accounts import sms_backends
from accounts.models import CodeSend, HourlySendBudget
from accounts.sms_backends import SmsDeliveryError
from tests.conftest import code_sent_to, drop_this_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "+79110000001"


@pytest.fixture
def database_drops_during_the_send(monkeypatch):
    deliver = sms_backends.MemoryBackend.send
    outcome = {"delivered": True}

    def send(self, *, phone, text):
        drop_this_connection()
        if not outcome["delivered"]:
            raise SmsDeliveryError("the provider is down too")
        deliver(self, phone=phone, text=text)

    monkeypatch.setattr(sms_backends.MemoryBackend, "send", send)
    return outcome


def test_a_code_delivered_while_the_connection_dropped_still_signs_in(outbox, database_drops_during_the_send):
    api = APIClient()

    response = api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")

    assert response.status_code == 200, response.json()
    check = api.post("/api/v1/auth/token/", {"phone": PHONE, "code": code_sent_to(outbox, PHONE)}, format="json")
    assert check.status_code == 200, check.json()


def test_a_failed_send_while_the_connection_dropped_spends_no_limit(outbox, database_drops_during_the_send):
    database_drops_during_the_send["delivered"] = False
    api = APIClient()

    response = api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "sms_delivery_failed"
    assert CodeSend.objects.count() == 0
    assert [budget.used for budget in HourlySendBudget.objects.all()] == [0]
