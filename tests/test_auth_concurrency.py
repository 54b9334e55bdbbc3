"""Limits that must hold under real concurrent requests: threads, separate connections, PostgreSQL."""

from collections import Counter

import pytest
from rest_framework.test import APIClient

from accounts.models import CheckFailure, CodeSend
from tests.conftest import code_sent_to, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "+79110000001"


def test_ten_simultaneous_code_requests_send_one_sms(outbox):
    def request(_):
        return APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code

    statuses = run_concurrently(10, request)

    assert Counter(statuses) == {200: 1, 429: 9}
    assert len(outbox) == 1
    assert CodeSend.objects.count() == 1


def test_twenty_simultaneous_wrong_guesses_count_as_twenty(outbox):
    APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json")
    code = code_sent_to(outbox, PHONE)
    wrong = f"{(int(code) + 1) % 10000:04d}"

    def guess(_):
        response = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json")
        return response.json()["code"]

    codes = Counter(run_concurrently(20, guess))

    # 5 wrong guesses kill the code, the next 5 hit a dead code, then 10 failures lock the phone.
    assert codes == {"invalid_code": 5, "code_expired": 5, "throttled": 10}
    assert CheckFailure.objects.filter(phone=PHONE).count() == 10
    right = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")
    assert right.status_code == 429


def test_one_refresh_token_raced_rotates_once(sign_in):
    refresh = sign_in(PHONE)["refresh"]

    def rotate(_):
        return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code

    assert Counter(run_concurrently(8, rotate)) == {200: 1, 401: 7}
