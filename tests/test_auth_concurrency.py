"""Limits that must hold under real concurrent requests: threads, separate connections, PostgreSQL."""

import time
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge
from tests.conftest import code_sent_to, in_a_thread, run_concurrently, wait_until_a_query_waits_on_a_lock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "+79110000001"


def test_ten_simultaneous_code_requests_send_one_sms(outbox):
    def request(_):
        return APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code

    statuses = run_concurrently(10, request)

    assert Counter(statuses) == {200: 1, 429: 9}
    assert len(outbox) == 1
    assert CodeSend.objects.count() == 1


def test_simultaneous_wrong_guesses_get_five_a_code_and_ten_a_day(outbox, settings):
    settings.OTP_RESEND_SECONDS = 0

    def guess(_):
        response = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json")
        return response.json()["code"]

    codes = Counter()
    for _ in range(2):
        APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json")
        code = code_sent_to(outbox, PHONE)
        wrong = f"{(int(code) + 1) % 10000:04d}"
        codes += Counter(run_concurrently(20, guess))

    # 5 wrong guesses kill each code and the rest find it dead; the second code's 5 lock the phone.
    assert codes == {"invalid_code": 10, "code_expired": 15, "throttled": 15}
    assert CheckFailure.objects.filter(phone=PHONE).count() == 10
    assert PhoneChallenge.objects.get(phone=PHONE).attempts == 5
    right = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": code}, format="json")
    assert right.status_code == 429


def test_eight_simultaneous_first_sign_ins_create_one_account(settings):
    settings.OTP_TEST_PHONES = {PHONE: "1234"}  # a fixed code: every one of them passes the check

    def sign_in(_):
        response = APIClient().post("/api/v1/auth/token/", {"phone": PHONE, "code": "1234"}, format="json")
        return response.status_code, response.json().get("created"), response.json().get("user", {}).get("id")

    results = run_concurrently(8, sign_in)

    assert get_user_model().objects.filter(phone=PHONE).count() == 1
    account = get_user_model().objects.get(phone=PHONE).pk
    assert Counter(results) == {(200, True, account): 1, (200, False, account): 7}
    assert OutstandingToken.objects.filter(user_id=account).count() == 8


def test_a_new_phone_s_row_is_inserted_once_by_simultaneous_requests(outbox):
    def request(i):
        # Half of them ask for the same new phone, whose row those five race to insert; half for their own.
        phone = PHONE if i % 2 else f"+7911200{i:04d}"
        return APIClient().post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code

    statuses = run_concurrently(10, request)

    assert Counter(statuses) == {200: 6, 429: 4}
    assert PhoneChallenge.objects.filter(phone=PHONE).count() == 1
    assert PhoneChallenge.objects.count() == 6
    assert len(outbox) == 6


def test_the_global_hourly_budget_holds_under_simultaneous_first_sends(settings, outbox):
    settings.OTP_GLOBAL_SENDS_PER_HOUR = 3

    def request(i):
        # The hour's first sends: its budget row does not exist yet, and each of them races to create it.
        return APIClient().post("/api/v1/auth/code/", {"phone": f"+7911300{i:04d}"}, format="json").status_code

    statuses = run_concurrently(10, request)

    assert Counter(statuses) == {200: 3, 429: 7}
    assert len(outbox) == 3
    assert CodeSend.objects.count() == 3
    assert list(HourlySendBudget.objects.values_list("used", flat=True)) == [3]


def test_one_refresh_token_raced_rotates_once(sign_in):
    refresh = sign_in(PHONE)["refresh"]

    def rotate(_):
        return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code

    assert Counter(run_concurrently(8, rotate)) == {200: 1, 401: 7}


def test_a_code_request_that_waited_for_the_phone_is_told_the_interval_not_more(outbox):
    # It reads the clock, then waits for the phone's lock, whose holder records a send a second
    # later and commits: the wait it is told counts from the send, not from its own clock read.
    PhoneChallenge.objects.create(phone=PHONE)

    def request():
        return APIClient().post("/api/v1/auth/code/", {"phone": PHONE}, format="json")

    with transaction.atomic():
        PhoneChallenge.objects.select_for_update().get(phone=PHONE)
        thread, outcome = in_a_thread(request)
        wait_until_a_query_waits_on_a_lock()
        time.sleep(1.5)
        CodeSend.objects.create(phone=PHONE, sent_at=timezone.now())
    thread.join()

    response = outcome["response"]
    assert response.status_code == 429, response.json()
    assert response["Retry-After"] == "60"
    assert response.json()["detail"] == "A code was just sent to this phone. Try again in 1 minute."
