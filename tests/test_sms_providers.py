import base64
import logging
import os
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.sms_backends import SmsDeliveryError, get_backend
from tests.fake_sms_provider import FakeProvider, closed_port_url

CODE_URL = "/api/v1/auth/code/"
TOKEN_URL = "/api/v1/auth/token/"
PHONE = "+79110000001"
SMS_TEXT = "Your sign-in code: 4821"
SMSAERO_EMAIL = "operator@example.com"
SMSAERO_KEY = "smsaero-test-key-0123456789"
EXOLVE_KEY = "exolve-test-key"
EXOLVE_SENDER = "79990000000"

# What each provider answers when it takes a message, and a typical refusal.
ACCEPTED = {
    "exolve": {"message_id": "539142795526733000"},
    "smsaero": {"success": True, "data": {"id": 1, "number": "79110000001", "status": 8}, "message": None},
}
REFUSED = {
    "exolve": {"error": {"code": 401, "message": "Unauthorized"}},
    "smsaero": {"success": False, "data": None, "message": "Authorization error"},
}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    """Any attempt to reach a host other than 127.0.0.1 (DNS over UDP included) fails the test."""

    def guard(method):
        def guarded(sock, address, *args):
            host = address[0] if isinstance(address, tuple) else address
            if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
                pytest.fail(f"test tried to reach {address!r}")
            return method(sock, address, *args)

        return guarded

    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))

    original_sendto = socket.socket.sendto

    def sendto(sock, data, *rest):
        guard(lambda s, a, *args: None)(sock, rest[-1])
        return original_sendto(sock, data, *rest)

    monkeypatch.setattr(socket.socket, "sendto", sendto)


@pytest.fixture
def fake():
    provider = FakeProvider().start()
    yield provider
    provider.stop()


def configure(settings, name, url):
    settings.SMS_BACKEND = name
    settings.SMS_TIMEOUT = 2.0
    if name == "exolve":
        settings.EXOLVE_URL = url
        settings.EXOLVE_API_KEY = EXOLVE_KEY
        settings.EXOLVE_SENDER = EXOLVE_SENDER
    else:
        settings.SMSAERO_URL = f"{url}/v2/"
        settings.SMSAERO_EMAIL = SMSAERO_EMAIL
        settings.SMSAERO_API_KEY = SMSAERO_KEY


@pytest.fixture(params=["exolve", "smsaero"])
def provider(request, settings, fake):
    """Either provider, configured against the fake, which accepts messages until told otherwise."""
    configure(settings, request.param, fake.url)
    fake.name = request.param
    fake.answers(200, ACCEPTED[request.param])
    return fake


@pytest.fixture
def exolve(settings, fake):
    configure(settings, "exolve", fake.url)
    fake.answers(200, ACCEPTED["exolve"])
    return fake


@pytest.fixture
def smsaero(settings, fake):
    configure(settings, "smsaero", fake.url)
    fake.answers(200, ACCEPTED["smsaero"])
    return fake


def send(phone=PHONE, text=SMS_TEXT):
    get_backend().send(phone=phone, text=text)


# The request each provider receives.


def test_exolve_posts_the_message_with_the_bearer_key(exolve):
    send()

    [request] = exolve.received
    assert request.path == "/messaging/v1/SendSMS"
    assert request.headers["Authorization"] == f"Bearer {EXOLVE_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"number": EXOLVE_SENDER, "destination": "79110000001", "text": SMS_TEXT}


def test_exolve_base_url_may_end_with_a_slash(exolve, settings):
    settings.EXOLVE_URL = f"{exolve.url}/"

    send()

    assert [request.path for request in exolve.received] == ["/messaging/v1/SendSMS"]


def test_smsaero_posts_the_message_with_basic_auth(smsaero):
    send()

    [request] = smsaero.received
    assert request.path == "/v2/sms/send"
    credentials = base64.b64encode(f"{SMSAERO_EMAIL}:{SMSAERO_KEY}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.body["number"] == 79110000001
    assert request.body["text"] == SMS_TEXT
    assert request.body["sign"] == "SMS Aero"


def test_smsaero_sends_the_configured_signature(smsaero, settings):
    settings.SMSAERO_SIGN = "Referrals"

    send()

    assert smsaero.received[0].body["sign"] == "Referrals"


def test_smsaero_url_without_trailing_slash_still_reaches_sms_send(smsaero, settings):
    settings.SMSAERO_URL = f"{smsaero.url}/v2"

    send()

    assert [request.path for request in smsaero.received] == ["/v2/sms/send"]


# Every failure becomes SmsDeliveryError.


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "refusal"),
        (401, "refusal"),
        (200, "refusal"),
        (500, b"Internal Server Error"),
        (502, b"<html>Bad Gateway</html>"),
        (200, b"not json"),
        (200, b""),
        (200, []),
        (200, {}),
        (200, b"[" * 100_000 + b"]" * 100_000),  # nested past json's recursion limit
        (200, b'{"success": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ],
)
def test_provider_failure_replies_raise_delivery_error(provider, status, body):
    provider.answers(status, REFUSED[provider.name] if body == "refusal" else body)

    with pytest.raises(SmsDeliveryError):
        send()

    assert len(provider.received) == 1  # one gate, one try: the caller's time is bounded


def test_smsaero_empty_balance_is_a_delivery_error(smsaero):
    smsaero.answers(200, {"success": False, "result": "no credits", "data": None})

    with pytest.raises(SmsDeliveryError, match="money"):
        send()


def test_slow_provider_is_cut_off_at_sms_timeout(provider, settings):
    settings.SMS_TIMEOUT = 0.5
    provider.answers(200, ACCEPTED[provider.name], delay=10)

    started = time.monotonic()
    with pytest.raises(SmsDeliveryError):
        send()

    assert time.monotonic() - started < 2.5
    assert len(provider.received) == 1


def test_a_provider_that_trickles_its_answer_is_cut_off_at_sms_timeout(provider, settings):
    settings.SMS_TIMEOUT = 0.5
    provider.answers(200, ACCEPTED[provider.name], trickle=0.05)  # about 10 s for the whole answer

    started = time.monotonic()
    with pytest.raises(SmsDeliveryError, match=r"within 0\.5 s"):
        send()

    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(("status", "late_acceptance_logged"), [(200, True), (500, False)])
def test_an_answer_after_the_timeout_is_logged_only_when_it_accepted(
    provider, settings, caplog, status, late_acceptance_logged
):
    settings.SMS_TIMEOUT = 0.3
    provider.answers(status, ACCEPTED[provider.name], trickle=0.005)  # about 1 s for the whole answer

    with pytest.raises(SmsDeliveryError, match=r"within 0\.3 s"):
        send()
    messages = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(messages) < 2:  # the timeout's, then the late answer's
        time.sleep(0.1)
        messages = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]

    assert len(messages) == 2, messages
    assert ("after the client was told it failed" in messages[1]) is late_acceptance_logged, messages


def test_a_redirect_is_not_followed(provider):
    provider.answers(307, ACCEPTED[provider.name], headers={"Location": "/elsewhere/"})

    with pytest.raises(SmsDeliveryError, match="HTTP 307"):
        send()

    assert len(provider.received) == 1


def test_an_error_status_is_a_failure_whatever_the_body_says(provider):
    provider.answers(500, ACCEPTED[provider.name])

    with pytest.raises(SmsDeliveryError, match="HTTP 500"):
        send()


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("exolve", {"message_id": None}),
        ("exolve", {"message_id": ""}),
        ("exolve", {"message_id": False}),
        ("exolve", {"message_id": []}),
        ("exolve", {"message_id": {}}),
        ("smsaero", {"success": True, "data": None}),
        ("smsaero", {"success": True, "data": {}}),
        ("smsaero", {"success": True, "data": {"id": False}}),
        ("smsaero", {"success": True, "data": {"id": [1]}}),
    ],
)
def test_a_success_without_a_message_id_is_a_failure(settings, fake, name, body):
    configure(settings, name, fake.url)
    fake.answers(200, body)

    with pytest.raises(SmsDeliveryError):
        send()


def test_refused_connection_is_a_delivery_error(provider, settings):
    url = closed_port_url()
    settings.EXOLVE_URL, settings.SMSAERO_URL = url, f"{url}/v2/"

    with pytest.raises(SmsDeliveryError):
        send()


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("exolve", "EXOLVE_API_KEY"),
        ("exolve", "EXOLVE_SENDER"),
        ("exolve", "EXOLVE_URL"),
        ("smsaero", "SMSAERO_EMAIL"),
        ("smsaero", "SMSAERO_API_KEY"),
        ("smsaero", "SMSAERO_URL"),
    ],
)
def test_missing_setting_is_a_delivery_error_and_sends_nothing(settings, fake, name, missing):
    configure(settings, name, fake.url)
    setattr(settings, missing, "")

    with pytest.raises(SmsDeliveryError, match=missing):
        send()

    assert fake.received == []


def test_smsaero_malformed_email_is_a_delivery_error(smsaero, settings):
    settings.SMSAERO_EMAIL = "not-an-email"

    with pytest.raises(SmsDeliveryError):
        send()

    assert smsaero.received == []


def test_logs_never_carry_the_text_or_the_full_phone(provider, caplog):
    caplog.set_level(logging.DEBUG)
    send()
    provider.answers(500, REFUSED[provider.name])
    with pytest.raises(SmsDeliveryError):
        send()

    assert caplog.records, "a failed send leaves a trace in the log"
    logged = caplog.text
    assert "4821" not in logged
    assert PHONE not in logged
    assert PHONE[1:] not in logged
    assert SMSAERO_KEY not in logged
    assert EXOLVE_KEY not in logged
    assert "+7 911 ***-**-01" in logged


def test_delivery_error_message_carries_no_text(provider):
    provider.answers(400, REFUSED[provider.name])

    with pytest.raises(SmsDeliveryError) as failure:
        send()

    assert "4821" not in str(failure.value)


# End to end through the API.


@pytest.mark.django_db
def test_code_request_goes_through_the_provider_and_signs_in(api, provider):
    response = api.post(CODE_URL, {"phone": "8 911 000 00 01"}, format="json")

    assert response.status_code == 200, response.json()
    [request] = provider.received
    destination = request.body["destination"] if provider.name == "exolve" else request.body["number"]
    assert str(destination) == "79110000001"
    code = request.body["text"].rsplit(" ", 1)[-1]
    response = api.post(TOKEN_URL, {"phone": PHONE, "code": code}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["user"]["phone"] == PHONE


@pytest.mark.django_db
def test_provider_failure_is_503_and_spends_no_limit(api, provider):
    provider.answers(500, REFUSED[provider.name])

    response = api.post(CODE_URL, {"phone": PHONE}, format="json")

    assert response.status_code == 503
    assert response.json() == {
        "code": "sms_delivery_failed",
        "detail": "The SMS could not be sent. Please try again shortly.",
    }
    assert response["Retry-After"] == "5"
    provider.answers(200, ACCEPTED[provider.name])
    response = api.post(CODE_URL, {"phone": PHONE}, format="json")
    assert response.status_code == 200, response.json()
    assert len(provider.received) == 2


@pytest.mark.django_db
def test_slow_provider_gives_503_within_the_timeout(api, exolve, settings):
    settings.SMS_TIMEOUT = 0.5
    exolve.answers(200, ACCEPTED["exolve"], delay=10)

    started = time.monotonic()
    response = api.post(CODE_URL, {"phone": PHONE}, format="json")

    assert time.monotonic() - started < 2.5
    assert response.status_code == 503
    assert response.json()["code"] == "sms_delivery_failed"


# The operator's command.


def test_send_test_sms_reports_success(provider):
    out = StringIO()

    call_command("send_test_sms", "+7 911 000-00-01", stdout=out)

    assert f"Sent a test SMS to {PHONE} through {provider.name}" in out.getvalue()
    [request] = provider.received
    assert request.body["text"]


def test_send_test_sms_reports_the_failure_reason(exolve):
    exolve.answers(401, REFUSED["exolve"])

    with pytest.raises(CommandError, match="HTTP 401"):
        call_command("send_test_sms", PHONE, stdout=StringIO())


def test_send_test_sms_refuses_an_invalid_phone(exolve):
    with pytest.raises(CommandError, match="not a valid phone number"):
        call_command("send_test_sms", "12345", stdout=StringIO())

    assert exolve.received == []


def test_send_test_sms_exits_non_zero_on_failure():
    """The command as operators run it: a separate process, configured by the environment only."""
    environment = {
        **os.environ,
        "SMS_BACKEND": "exolve",
        "EXOLVE_URL": closed_port_url(),
        "EXOLVE_API_KEY": EXOLVE_KEY,
        "EXOLVE_SENDER": EXOLVE_SENDER,
        "SMS_TIMEOUT": "2",
    }
    manage = Path(__file__).resolve().parent.parent / "manage.py"

    result = subprocess.run(
        [sys.executable, str(manage), "send_test_sms", PHONE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "cannot connect" in result.stderr
