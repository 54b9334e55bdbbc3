import json
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

from accounts.models import CheckFailure
from project.throttling import wait_in_words
from tests.conftest import code_sent_to, room_in_the_rate_window

pytestmark = pytest.mark.django_db

CODE_URL = "/api/v1/auth/code/"
TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
PROFILE_URL = "/api/v1/me/"

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGUE = LOCALE / "ru" / "LC_MESSAGES" / "django.po"


@pytest.fixture(autouse=True)
def back_to_default_language():
    yield
    translation.deactivate()


def call(api, language, method, url, data=None, **headers):
    send = getattr(api, method)
    if data is None:
        return send(url, HTTP_ACCEPT_LANGUAGE=language, **headers)
    # As JSON escapes it: a client's half of an emoji (a lone surrogate) has no UTF-8 of its own.
    body = json.dumps(data)
    return send(url, body, content_type="application/json", HTTP_ACCEPT_LANGUAGE=language, **headers)


def test_invalid_phone(api):
    ru = call(api, "ru", "post", CODE_URL, {"phone": "12345"})
    en = call(api, "en", "post", CODE_URL, {"phone": "12345"})

    assert ru.status_code == en.status_code == 400
    assert ru.json() == {
        "code": "invalid_phone",
        "detail": "Неверные данные.",
        "errors": {"phone": ["Введите правильный номер телефона, например +7 911 000-00-00."]},
    }
    assert en.json() == {
        "code": "invalid_phone",
        "detail": "Invalid input.",
        "errors": {"phone": ["Enter a valid phone number, e.g. +7 911 000-00-00."]},
    }


def test_wrong_code(api, outbox):
    api.post(CODE_URL, {"phone": "+79110000001"}, format="json")
    wrong = "0000" if code_sent_to(outbox, "+79110000001") != "0000" else "1111"

    ru = call(api, "ru", "post", TOKEN_URL, {"phone": "+79110000001", "code": wrong})
    en = call(api, "en", "post", TOKEN_URL, {"phone": "+79110000001", "code": wrong})

    assert ru.status_code == en.status_code == 400
    assert ru.json() == {"code": "invalid_code", "detail": "Неверный код."}
    assert en.json() == {"code": "invalid_code", "detail": "The code is wrong."}


def test_missing_field_is_drf_validation_error(api):
    ru = call(api, "ru-RU,ru;q=0.9", "post", CODE_URL, {})
    en = call(api, "en-US,en;q=0.9", "post", CODE_URL, {})

    assert ru.json() == {
        "code": "invalid",
        "detail": "Неверные данные.",
        "errors": {"phone": ["Обязательное поле."]},
    }
    assert en.json() == {
        "code": "invalid",
        "detail": "Invalid input.",
        "errors": {"phone": ["This field is required."]},
    }


def test_not_authenticated(api):
    ru = call(api, "ru", "get", PROFILE_URL)
    en = call(api, "en", "get", PROFILE_URL)

    assert ru.status_code == en.status_code == 401
    assert ru.json() == {"code": "not_authenticated", "detail": "Учётные данные не предоставлены."}
    assert en.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}


def test_simplejwt_access_token_error(api):
    garbage = {"HTTP_AUTHORIZATION": "Bearer not-a-token"}

    ru = call(api, "ru", "get", PROFILE_URL, **garbage)
    en = call(api, "en", "get", PROFILE_URL, **garbage)

    assert ru.status_code == en.status_code == 401
    assert ru.json() == {"code": "token_not_valid", "detail": "Токен недействителен"}
    assert en.json() == {"code": "token_not_valid", "detail": "Given token not valid for any token type"}


def test_simplejwt_refresh_token_error(api):
    ru = call(api, "ru", "post", REFRESH_URL, {"refresh": "not-a-token"})
    en = call(api, "en", "post", REFRESH_URL, {"refresh": "not-a-token"})

    assert ru.json() == {"code": "token_not_valid", "detail": "Токен недействителен"}
    assert en.json() == {"code": "token_not_valid", "detail": "Token is invalid"}


def test_resend_limit(api, outbox):
    api.post(CODE_URL, {"phone": "+79110000001"}, format="json")

    ru = call(api, "ru", "post", CODE_URL, {"phone": "+79110000001"})
    en = call(api, "en", "post", CODE_URL, {"phone": "+79110000001"})

    assert ru.status_code == en.status_code == 429
    assert ru.json()["code"] == en.json()["code"] == "throttled"
    # The resend gap is 60 s: a minute, or its last seconds if the second request was slow.
    assert re.fullmatch(
        r"Код на этот номер только что отправлен\. Повторите попытку через (1 минуту|\d\d секунд[уы]?)\.",
        ru.json()["detail"],
    )
    assert re.fullmatch(
        r"A code was just sent to this phone\. Try again in (1 minute|\d\d seconds)\.", en.json()["detail"]
    )


def test_a_locked_phone_is_told_the_wait_in_hours(api):
    CheckFailure.objects.bulk_create([CheckFailure(phone="+79110000001") for _ in range(10)])

    ru = call(api, "ru", "post", TOKEN_URL, {"phone": "+79110000001", "code": "1234"})
    en = call(api, "en", "post", CODE_URL, {"phone": "+79110000001"})

    assert ru.status_code == en.status_code == 429
    assert ru.json()["detail"] == "Слишком много неверных кодов для этого номера. Повторите попытку через 24 часа."
    assert en.json()["detail"] == "Too many wrong codes for this phone. Try again in 24 hours."
    assert 23 * 3600 < int(ru["Retry-After"]) <= 24 * 3600


def test_the_hours_limit_is_told_in_minutes(api, outbox, settings):
    settings.OTP_RESEND_SECONDS = 0
    for _ in range(settings.OTP_SENDS_PER_HOUR):
        assert api.post(CODE_URL, {"phone": "+79110000001"}, format="json").status_code == 200

    ru = call(api, "ru", "post", CODE_URL, {"phone": "+79110000001"})

    assert ru.status_code == 429
    expected = r"На этот номер отправлено слишком много кодов\. Повторите попытку через 60 минут\."  # noqa: RUF001
    assert re.fullmatch(expected, ru.json()["detail"])
    assert 3590 < int(ru["Retry-After"]) <= 3600


def test_the_per_ip_limit_is_told_in_russian(api, settings):
    settings.AUTH_IP_RATE = "1/minute"
    room_in_the_rate_window()
    call(api, "ru", "post", TOKEN_URL, {})

    ru = call(api, "ru", "post", TOKEN_URL, {})

    assert ru.status_code == 429
    assert re.fullmatch(
        r"Слишком много запросов\. Повторите попытку через (1 минуту|\d\d? секунд[уы]?)\.", ru.json()["detail"]
    )


@pytest.mark.parametrize(
    ("seconds", "russian", "english"),
    [
        (1, "1 секунду", "1 second"),
        (3, "3 секунды", "3 seconds"),
        (11, "11 секунд", "11 seconds"),
        (21, "21 секунду", "21 seconds"),
        (59, "59 секунд", "59 seconds"),
        (60, "1 минуту", "1 minute"),
        (61, "2 минуты", "2 minutes"),
        (3295, "55 минут", "55 minutes"),
        (7199, "120 минут", "120 minutes"),
        (7200, "2 часа", "2 hours"),
        (7201, "3 часа", "3 hours"),
        (75600, "21 час", "21 hours"),
        (86400, "24 часа", "24 hours"),
    ],
)
def test_waits_read_as_words_rounded_up(seconds, russian, english):
    with translation.override("ru"):
        assert wait_in_words(seconds) == russian
    with translation.override("en"):
        assert wait_in_words(seconds) == english


def test_unknown_language_falls_back_to_english(api):
    response = call(api, "de", "get", PROFILE_URL)

    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_sms_is_in_sms_language_whatever_the_request_language(api, outbox):
    call(api, "en", "post", CODE_URL, {"phone": "+79110000001"})

    assert outbox[-1]["text"] == f"Ваш код для входа: {code_sent_to(outbox, '+79110000001')}"


@override_settings(SMS_LANGUAGE="en")
def test_sms_language_is_a_setting(api, outbox):
    call(api, "ru", "post", CODE_URL, {"phone": "+79110000001"})

    assert outbox[-1]["text"] == f"Your sign-in code: {code_sent_to(outbox, '+79110000001')}"


def test_catalogue_is_fully_translated():
    catalogue = polib.pofile(str(CATALOGUE))

    assert catalogue.percent_translated() == 100
    assert not catalogue.fuzzy_entries()
    assert not catalogue.obsolete_entries()


def test_compiled_catalogue_is_fresh():
    source = {(entry.msgctxt, entry.msgid): entry.msgstr for entry in polib.pofile(str(CATALOGUE)) if entry.msgid}
    compiled = {(entry.msgctxt, entry.msgid): entry.msgstr for entry in polib.mofile(str(CATALOGUE.with_suffix(".mo")))}

    assert compiled == source, "locale/ru/LC_MESSAGES/django.mo is stale: run `make messages` and commit it"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (apt-get install gettext)")
def test_catalogue_has_every_message_of_the_code(tmp_path, monkeypatch):
    root = Path(settings.BASE_DIR)
    for package in ("accounts", "project", "referrals"):
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(LOCALE, tmp_path / "locale")
    monkeypatch.chdir(tmp_path)

    with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
        call_command("makemessages", locale=["ru"], no_location=True, verbosity=0)

    extracted = polib.pofile(str(tmp_path / "locale" / "ru" / "LC_MESSAGES" / "django.po"))
    current = {entry.msgid for entry in extracted if not entry.obsolete}
    assert current == {entry.msgid for entry in polib.pofile(str(CATALOGUE))}, "run `make messages` and translate"
    assert not extracted.untranslated_entries(), "new messages: run `make messages` and translate them"


WRONG_VALUES = [
    True,
    [],
    {},
    None,
    "",
    "9" * 200,
    "\ud800",
]  # each refused by at least one field check; the last is half an emoji


@pytest.mark.parametrize(
    ("url", "field", "other_fields"),
    [
        (CODE_URL, "phone", {}),
        (TOKEN_URL, "phone", {"code": "1234"}),
        (TOKEN_URL, "code", {"phone": "+79110000000"}),
        (REFRESH_URL, "refresh", {}),
        ("/api/v1/auth/logout/", "refresh", {}),
        ("/api/v1/me/invite/", "invite_code", {}),
        (PROFILE_URL, "first_name", {}),
    ],
)
def test_every_field_message_is_in_russian(api, authed, url, field, other_fields):
    client = authed() if url.startswith(PROFILE_URL) else api
    method = "patch" if url == PROFILE_URL else "post"
    refused, untranslated = 0, []
    for value in WRONG_VALUES:
        response = call(client, "ru", method, url, {**other_fields, field: value})

        if response.status_code == 200:  # a blank name is allowed
            continue
        refused += 1
        assert response.status_code in (400, 401), (value, response.content)  # 401: a refresh token of nines
        body = response.json()
        messages = [body["detail"], *(message for messages in body.get("errors", {}).values() for message in messages)]
        untranslated += [(value, message) for message in messages if not is_russian(message)]
    assert refused >= 5
    assert untranslated == []


@pytest.mark.parametrize("body", [[1, 2], "text", 5, None])
@pytest.mark.parametrize(
    ("language", "expected"),
    # DRF's own words were English for null and half English otherwise ("Ожидался dictionary, но был получен list").
    [("ru", "Тело запроса должно быть объектом JSON."), ("en", "The request body must be a JSON object.")],
)
def test_a_body_that_is_not_an_object_is_refused_in_the_client_s_language(api, body, language, expected):
    raw = json.dumps(body)
    response = api.generic("POST", CODE_URL, raw, content_type="application/json", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": [expected]}


def is_russian(message: str) -> bool:
    return any("\u0430" <= ch.lower() <= "\u044f" for ch in message)  # a Cyrillic letter


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ru_RU", "ru"),  # Java's Locale.toString()
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("ru, en;q=abc", "ru"),  # one item it cannot read does not drop the rest
        ("ru;q=1.5", "ru"),
        ("ru;q=0, en;q=0.5", "en"),
        ("ru;q=0", "en"),  # "not Russian"
        ("de, ru;q=0.3", "ru"),
        ("ru;level=1;q=0, en", "en"),  # q need not be the first parameter
        ("en-US@euro, ru;q=0.5", "ru"),  # an item that is no language range is left out, not the header
    ],
)
def test_accept_language_is_read_as_clients_write_it(api, header, language):
    response = call(api, header, "get", PROFILE_URL)

    assert response["Content-Language"] == language


def test_a_language_cookie_does_not_outrank_accept_language(api):
    api.cookies["django_language"] = "ru"  # as another Django site on the same domain may set it

    response = call(api, "en", "get", PROFILE_URL)

    assert response["Content-Language"] == "en"
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_replies_outside_drf_write_russian_as_utf8_like_drf(api):
    too_large = api.generic(
        "POST", CODE_URL, "{}", content_type="application/json", HTTP_ACCEPT_LANGUAGE="ru", CONTENT_LENGTH="99999999"
    )
    not_found = call(api, "ru", "get", "/api/v1/nothing/")

    assert (too_large.status_code, not_found.status_code) == (413, 404)
    for response in (too_large, not_found):
        assert "\\u04" not in response.content.decode()
        assert is_russian(json.loads(response.content)["detail"])


@pytest.mark.parametrize(("language", "heading"), [("ru", "Страница не найдена"), ("en", "Page not found")])
def test_pages_outside_the_api_are_in_the_language_they_are_sent_in(client, language, heading):
    response = client.get("/nothing/", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 404
    assert response["Content-Language"] == language
    assert f'<html lang="{language}">' in response.content.decode()
    assert f"<h1>{heading}</h1>" in response.content.decode()
