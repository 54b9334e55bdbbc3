"""Every one-time code rule of DESIGN.md, each limit at its boundary. Time moves by editing stored timestamps."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts import otp, services
from accounts.exceptions import PhoneSendLimitReached
from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge
from tests.conftest import code_sent_to

pytestmark = pytest.mark.django_db

CODE_URL = "/api/v1/auth/code/"
TOKEN_URL = "/api/v1/auth/token/"
PHONE = "+79110000001"


def request_code(api, phone=PHONE):
    return api.post(CODE_URL, {"phone": phone}, format="json")


def wrong_code(code):
    return f"{(int(code) + 1) % 10000:04d}"


def check(api, code, phone=PHONE):
    return api.post(TOKEN_URL, {"phone": phone, "code": code}, format="json")


def age_sends(delta, phone=PHONE):
    for send in CodeSend.objects.filter(phone=phone):
        send.sent_at -= delta
        send.save()


def wrong(code):
    return f"{(int(code) + 1) % 10000:04d}"


def test_code_is_four_ascii_digits(api, outbox):
    request_code(api)

    code = code_sent_to(outbox, PHONE)
    assert len(code) == 4 and code.isascii() and code.isdigit()


def test_second_code_within_a_minute_is_throttled_with_retry_after(api, outbox):
    assert request_code(api).status_code == 200

    response = request_code(api)

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 55 <= int(response["Retry-After"]) <= 60
    assert len(outbox) == 1


def test_new_code_after_a_minute_replaces_the_old_one(api, outbox, monkeypatch):
    codes = iter(["1111", "2222"])  # two random codes are the same one time in 10,000
    monkeypatch.setattr(otp, "generate_code", lambda: next(codes))
    request_code(api)
    old = code_sent_to(outbox, PHONE)
    age_sends(timedelta(seconds=61))

    assert request_code(api).status_code == 200
    new = code_sent_to(outbox, PHONE)
    assert (old, new) == ("1111", "2222")
    assert check(api, old).json()["code"] == "invalid_code"
    assert check(api, new).status_code == 200


def test_codes_are_drawn_by_secrets_from_all_ten_digits(api, outbox, monkeypatch):
    alphabets = []

    def choice(alphabet):
        alphabets.append(alphabet)
        return real_choice(alphabet)

    real_choice = otp.secrets.choice
    monkeypatch.setattr(otp.secrets, "choice", choice)  # a guessable generator would not call it
    request_code(api)

    assert alphabets == ["0123456789"] * 4
    digits = {digit for _ in range(300) for digit in otp.generate_code()}
    assert digits == set("0123456789")


def test_a_code_lives_as_long_as_the_reply_says(api, outbox):
    before = timezone.now()
    response = request_code(api)
    after = timezone.now()

    assert response.json()["expires_in"] == 300
    expires_at = PhoneChallenge.objects.get(phone=PHONE).expires_at
    assert before + timedelta(seconds=300) <= expires_at <= after + timedelta(seconds=300)


def test_at_most_five_codes_an_hour(api, outbox):
    for _ in range(5):
        assert request_code(api).status_code == 200
        age_sends(timedelta(seconds=61))

    response = request_code(api)

    assert response.status_code == 429
    # The oldest of the five was sent 5 * 61 s ago; it leaves the hour window then.
    assert 3600 - 5 * 61 - 5 <= int(response["Retry-After"]) <= 3600 - 5 * 61
    assert len(outbox) == 5


def test_the_fifth_code_of_the_hour_says_when_the_sixth_may_be_asked_for(api, outbox):
    for _ in range(4):
        assert request_code(api).json()["retry_after"] == 60
        age_sends(timedelta(seconds=61))

    fifth = request_code(api).json()["retry_after"]
    age_sends(timedelta(seconds=61))

    # The oldest of the five leaves the hour window 3600 - 4 * 61 s after the fifth went out.
    assert fifth == 3600 - 4 * 61
    refused = request_code(api)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == fifth - 61


def test_a_refusal_right_after_the_fifth_code_names_the_hour_not_the_minute(api, outbox):
    for _ in range(4):
        assert request_code(api).status_code == 200
        age_sends(timedelta(seconds=61))
    fifth = request_code(api).json()["retry_after"]

    refused = request_code(api)  # within the minute, and the hour is full too

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == fifth
    assert refused.json()["detail"].startswith(str(PhoneSendLimitReached.default_reason))


def test_the_tenth_code_of_the_day_says_when_the_eleventh_may_be_asked_for(api, outbox):
    for _ in range(9):
        assert request_code(api).status_code == 200
        age_sends(timedelta(minutes=13))

    tenth = request_code(api).json()["retry_after"]

    # The oldest of the ten was sent 9 * 13 minutes ago; the day window lets it go 24 h after.
    assert tenth == 24 * 3600 - 9 * 13 * 60


def test_at_most_ten_codes_a_day(api, outbox):
    for _ in range(10):
        assert request_code(api).status_code == 200
        age_sends(timedelta(minutes=13))  # 5 an hour would still allow these

    response = request_code(api)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 3600  # the day window, not the hour window
    assert len(outbox) == 10


@override_settings(OTP_GLOBAL_SENDS_PER_HOUR=10**10)
def test_a_global_hourly_budget_past_32_bits_still_sends(api, outbox):
    # The hour's first send creates the budget's row; the second takes from the existing one.
    statuses = [request_code(api, phone).status_code for phone in ("+79110000001", "+79110000002")]

    assert statuses == [200, 200]
    assert len(outbox) == 2


@override_settings(OTP_GLOBAL_SENDS_PER_HOUR=2)
def test_global_hourly_budget_holds_across_phones(api, outbox):
    assert request_code(api, "+79110000001").status_code == 200
    assert request_code(api, "+79110000002").status_code == 200

    response = request_code(api, "+79110000003")

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert len(outbox) == 2


@override_settings(OTP_GLOBAL_SENDS_PER_HOUR=0)
def test_a_budget_of_zero_sends_nothing_and_counts_nothing(api, outbox):
    response = request_code(api)

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert outbox == []
    assert not CodeSend.objects.exists()
    assert not HourlySendBudget.objects.exists()


def test_code_expires_after_five_minutes(api, outbox):
    request_code(api)
    PhoneChallenge.objects.filter(phone=PHONE).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = check(api, code_sent_to(outbox, PHONE))

    assert response.status_code == 400
    assert response.json() == {"code": "code_expired", "detail": response.json()["detail"]}


def test_code_still_works_just_before_expiry(api, outbox):
    request_code(api)
    PhoneChallenge.objects.filter(phone=PHONE).update(expires_at=timezone.now() + timedelta(seconds=2))

    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200


def test_five_wrong_attempts_kill_the_code(api, outbox):
    request_code(api)
    code = code_sent_to(outbox, PHONE)

    answers = [check(api, wrong(code)).json()["code"] for _ in range(5)]
    final = check(api, code)

    assert answers == ["invalid_code"] * 5
    assert final.status_code == 400
    assert final.json()["code"] == "code_expired"


def test_four_wrong_attempts_leave_the_code_alive(api, outbox):
    request_code(api)
    code = code_sent_to(outbox, PHONE)

    for _ in range(4):
        check(api, wrong(code))

    assert check(api, code).status_code == 200


def test_ten_failed_checks_lock_the_phone_even_with_a_new_code(api, outbox):
    for _ in range(2):
        request_code(api)
        code = code_sent_to(outbox, PHONE)
        for _ in range(5):
            assert check(api, wrong(code)).status_code == 400
        age_sends(timedelta(seconds=61))
    assert request_code(api).status_code == 429  # no new code, which would not reset the count anyway

    response = check(api, code_sent_to(outbox, PHONE))

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 23 * 3600 < int(response["Retry-After"]) <= 24 * 3600


def test_failures_hours_old_still_lock_sign_in_for_the_rest_of_their_day(api, outbox):
    request_code(api)
    hours_ago = [timezone.now() - timedelta(hours=hours) for hours in range(20, 10, -1)]  # 20 h ... 11 h ago
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE, failed_at=moment) for moment in hours_ago])

    response = check(api, code_sent_to(outbox, PHONE))

    assert response.status_code == 429
    # The lock opens when the oldest of the ten leaves the day, four hours from now.
    assert 4 * 3600 - 60 < int(response["Retry-After"]) <= 4 * 3600


def test_lock_lifts_when_the_failures_leave_the_day_window(api, outbox):
    CheckFailure.objects.bulk_create(
        [CheckFailure(phone=PHONE, failed_at=timezone.now() - timedelta(hours=24, seconds=1)) for _ in range(10)]
    )
    request_code(api)

    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200


def test_a_locked_phone_is_sent_no_code_it_could_not_use(api, outbox):
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE) for _ in range(10)])

    response = request_code(api)

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith("Too many wrong codes for this phone.")
    assert 23 * 3600 < int(response["Retry-After"]) <= 24 * 3600
    assert outbox == []
    assert CodeSend.objects.count() == 0 and HourlySendBudget.objects.count() == 0


def test_nine_failures_do_not_lock(api, outbox):
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE) for _ in range(9)])
    request_code(api)

    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200


def test_checks_with_no_code_sent_never_lock_the_phone(api, outbox):
    # No guess could open anything, and counting these would let anyone lock any phone, no SMS sent.
    assert [check(api, "0000").json()["code"] for _ in range(12)] == ["code_expired"] * 12
    request_code(api)

    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200
    assert CheckFailure.objects.filter(phone=PHONE).count() == 0


@pytest.mark.parametrize("dead", ["expired", "killed by its wrong guesses"])
def test_checks_of_a_dead_code_never_lock_the_phone(api, outbox, settings, dead):
    # Else one SMS, then ten checks a day of the dead code, would keep a phone locked for good.
    settings.OTP_RESEND_SECONDS = 0
    request_code(api)
    code = code_sent_to(outbox, PHONE)
    if dead == "expired":
        PhoneChallenge.objects.filter(phone=PHONE).update(expires_at=timezone.now() - timedelta(seconds=1))
        counted = 0
    else:
        assert [check(api, wrong_code(code)).json()["code"] for _ in range(5)] == ["invalid_code"] * 5
        counted = 5

    answers = [check(api, guess).json()["code"] for guess in [code, wrong_code(code)] * 6]

    assert answers == ["code_expired"] * 12
    assert CheckFailure.objects.filter(phone=PHONE).count() == counted
    request_code(api)
    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200


def test_sending_the_right_code_again_does_not_lock_the_phone(api, outbox):
    # A client retrying a sign-in that already went through (a double tap, a lost reply).
    request_code(api)
    code = code_sent_to(outbox, PHONE)
    assert check(api, code).status_code == 200

    retries = [check(api, code).json()["code"] for _ in range(12)]

    assert retries == ["code_expired"] * 12
    age_sends(timedelta(seconds=61))
    request_code(api)
    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200


def test_check_without_any_code_is_refused(api):
    response = check(api, "1234")

    assert response.status_code == 400
    assert response.json()["code"] == "code_expired"


def test_failed_delivery_is_503_and_spends_no_limit(api, settings, outbox):
    settings.SMS_BACKEND = "tests.sms_doubles.FailingBackend"
    response = request_code(api)

    assert response.status_code == 503
    assert response.json()["code"] == "sms_delivery_failed"
    assert CodeSend.objects.count() == 0
    assert HourlySendBudget.objects.get().used == 0

    settings.SMS_BACKEND = "memory"
    assert request_code(api).status_code == 200  # straight away: the failure was not counted


def test_failed_delivery_keeps_the_previous_code(api, settings, outbox):
    request_code(api)
    code = code_sent_to(outbox, PHONE)
    age_sends(timedelta(seconds=61))
    settings.SMS_BACKEND = "tests.sms_doubles.FailingBackend"

    assert request_code(api).status_code == 503
    assert check(api, code).status_code == 200


@override_settings(OTP_TEST_PHONES={"+79990000000": "1234"})
def test_test_phones_have_fixed_codes_no_sms_and_no_send_limits(api, outbox):
    for _ in range(15):
        assert request_code(api, "8 999 000 00 00").status_code == 200

    assert outbox == []
    assert check(api, "4321", "+79990000000").json()["code"] == "invalid_code"
    response = check(api, "1234", "+79990000000")
    assert response.status_code == 200
    assert response.json()["created"] is True


def test_test_phones_are_off_by_default(settings):
    assert settings.OTP_TEST_PHONES == {}


def test_a_crashing_backend_spends_no_limit(api, settings):
    settings.SMS_BACKEND = "tests.sms_doubles.CrashingBackend"
    api.raise_request_exception = False

    assert request_code(api).status_code == 500
    assert CodeSend.objects.count() == 0
    assert HourlySendBudget.objects.get().used == 0  # the hour's budget is a limit too
    settings.SMS_BACKEND = "memory"
    assert request_code(api).status_code == 200  # the resend interval was not spent either


def test_unknown_sms_backend_fails_the_system_check(settings):
    from django.core.checks import run_checks

    settings.SMS_BACKEND = "carrier-pigeon"

    assert [error.id for error in run_checks() if error.is_serious()] == ["accounts.E001"]


@pytest.mark.parametrize(
    "rate",
    # DRF reads the period's first letter alone: a month or milliseconds were a minute.
    ["30/fortnight", "30", "thirty/minute", "30/", "-1/minute", "0/minute", "30/month", "100/ms", "30/minut"],
)
def test_a_malformed_auth_ip_rate_fails_the_system_check(settings, rate):
    from django.core.checks import run_checks

    settings.AUTH_IP_RATE = rate

    assert [error.id for error in run_checks() if error.is_serious()] == ["accounts.E003"]


@pytest.mark.parametrize(
    "rate", ["30/minute", "5/s", "1000/day", "off", "", "10/min", "10/mins", "2/hours", "2/hr", "1/secs"]
)
def test_auth_ip_rates_that_parse_pass_the_system_check(settings, rate):
    from django.core.checks import run_checks

    settings.AUTH_IP_RATE = rate

    assert [error.id for error in run_checks() if error.is_serious()] == []


@override_settings(OTP_TEST_PHONES={"+79990000000": "1234"})
def test_test_phones_still_count_wrong_guesses_and_lock(api):
    answers = [check(api, f"{guess:04d}", "+79990000000").json()["code"] for guess in range(10)]

    locked = check(api, "1234", "+79990000000")

    assert answers == ["invalid_code"] * 10  # 0000..0009, none of them 1234
    assert locked.status_code == 429  # ten refusals in a day lock even a test phone
    assert CheckFailure.objects.filter(phone="+79990000000").count() == 10


@override_settings(OTP_TEST_PHONES={"+7999000000": "1234", "+79990000001": "4321"})
def test_a_malformed_test_phone_breaks_nobody_and_fails_the_check(api, outbox):
    from django.core.checks import run_checks

    assert request_code(api).status_code == 200
    assert check(api, "4321", "+79990000001").status_code == 200
    # DEBUG is off in tests: the memory backend (W001) and the test phones (W002) are warned of.
    found = sorted(error.id for error in run_checks() if error.id.startswith("accounts."))  # not the project's
    assert found == ["accounts.E002", "accounts.W001", "accounts.W002"]


def test_an_existing_account_counts_only_the_day_s_failures_and_locks_at_ten(api, outbox):
    request_code(api)
    assert check(api, code_sent_to(outbox, PHONE)).status_code == 200  # the account exists from here on
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE, failed_at=day_ago) for _ in range(10)])
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE) for _ in range(9)])
    age_sends(timedelta(seconds=61))
    request_code(api)
    code = code_sent_to(outbox, PHONE)

    assert check(api, wrong(code)).json()["code"] == "invalid_code"  # nine in the window: still open; the tenth
    locked = check(api, code)

    assert locked.status_code == 429
    assert CheckFailure.objects.filter(phone=PHONE, failed_at__lt=day_ago + timedelta(seconds=2)).count() == 0


def test_refusals_older_than_a_day_are_cleared_when_the_phone_asks_for_a_code(api, outbox):
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE, failed_at=day_ago) for _ in range(3)])
    CheckFailure.objects.create(phone=PHONE)

    request_code(api)

    assert CheckFailure.objects.filter(phone=PHONE).count() == 1


def test_refusals_older_than_a_day_are_cleared_when_the_phone_is_refused_again(api, outbox):
    request_code(api)
    code = code_sent_to(outbox, PHONE)
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE, failed_at=day_ago) for _ in range(3)])

    assert check(api, wrong(code)).json()["code"] == "invalid_code"

    assert CheckFailure.objects.filter(phone=PHONE).count() == 1  # only the new refusal
    assert PhoneChallenge.objects.get(phone=PHONE).attempts == 1


def test_sends_older_than_a_day_are_cleared_and_no_longer_count(api, outbox):
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CodeSend.objects.bulk_create([CodeSend(phone=PHONE, sent_at=day_ago) for _ in range(10)])  # a full day's

    assert request_code(api).status_code == 200

    assert CodeSend.objects.filter(phone=PHONE).count() == 1  # only the new one


def test_a_lock_lifted_between_its_count_and_its_wait_says_retry_now(outbox):
    # Support deletes a phone's refusals in the admin, without the phone's lock, while a check that
    # has counted them works out the wait: it must still answer (a 429 of one second), not fail.
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE) for _ in range(3)])

    assert services._seconds_until_unlocked(PHONE, now=timezone.now()) == 1
