"""No request, however malformed, gets a 500 or an HTML page: always the JSON envelope."""

import base64
import io
import json
import logging
from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from project.logs import RefusalsAsOneLine
from tests.referral_graph import make_invitees

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/auth/code/",
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/logout/",
    "/api/v1/me/invite/",
]


def assert_envelope(response, status, code=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"code", "detail", "errors"}
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "parse_error"),
        (b"\xff\xfe\x00binary", "application/json", 400, "parse_error"),
        (b"[1, 2, 3]", "application/json", 400, "invalid"),
        (b'"a string"', "application/json", 400, "invalid"),
        (b"null", "application/json", 400, "invalid"),
        (b"phone=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"<xml/>", "text/xml", 415, "unsupported_media_type"),
        (b'{"phone": "x"}', "*/*", 415, "unsupported_media_type"),  # a pattern, not a type: no format named
        (b'{"phone": "x"}', "application/*", 415, "unsupported_media_type"),
        (b"", "application/json", 400, None),
    ],
)
def test_malformed_bodies_get_the_envelope(api, authed, url, body, content_type, status, code):
    client = authed() if url.startswith("/api/v1/me") else api
    response = client.generic("POST", url, body, content_type=content_type)

    assert_envelope(response, status, code)


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "payload",
    [
        {"phone": 79110000000.5, "code": [], "refresh": {}, "invite_code": 5},
        {"phone": True, "code": False, "refresh": None, "invite_code": None},
        {"phone": {"a": 1}, "code": {"b": 2}, "refresh": [1], "invite_code": ["ABCDEF"]},
        {"phone": "+7911\x000000000", "code": "12\x0034", "refresh": "a\x00b", "invite_code": "ABC\x00EF"},
        {"phone": "9" * 10_000, "code": "1" * 10_000, "refresh": "r" * 10_000, "invite_code": "A" * 10_000},
        {"unknown": "field", "another": [1, 2]},
    ],
)
def test_wrong_types_nul_bytes_and_long_strings_are_400(api, authed, url, payload):
    client = authed() if url.startswith("/api/v1/me") else api
    response = client.post(url, payload, format="json")

    assert_envelope(response, 400)


def test_huge_body_is_413_before_parsing(api):
    body = json.dumps({"phone": "+79110000000", "padding": "x" * 200_000})

    response = api.generic("POST", "/api/v1/auth/code/", body, content_type="application/json")

    assert_envelope(response, 413, "request_too_large")


@pytest.mark.parametrize(
    ("extra", "status", "detail"),
    [
        ({}, 413, "Слишком большое тело запроса."),
        ({"CONTENT_LENGTH": "abc"}, 400, "Неверный запрос."),
    ],
)
def test_body_limit_refusals_speak_the_request_language(api, extra, status, detail):
    body = json.dumps({"phone": "+79110000000", "padding": "x" * 200_000})

    response = api.generic(
        "POST", "/api/v1/auth/code/", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="ru", **extra
    )

    assert response.status_code == status
    assert response.json()["detail"] == detail


def test_a_body_on_a_get_is_not_read_so_not_refused(authed):
    response = authed().generic("GET", "/api/v1/me/", "x" * 200_000, content_type="application/json")

    assert response.status_code == 200


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_content_length_that_is_not_a_length_is_400(api, length):
    response = api.generic(
        "POST",
        "/api/v1/auth/code/",
        b'{"phone": "+79110000000"}',
        content_type="application/json",
        CONTENT_LENGTH=length,
    )

    assert_envelope(response, 400, "bad_request")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_chunked_body_without_a_length_is_411_not_read_as_empty(api, language):
    # Django reads a body by its Content-Length alone: a chunked one would pass as empty ("phone" missing).
    response = api.generic(
        "POST",
        "/api/v1/auth/code/",
        b'{"phone": "+79110000000"}',
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    body = assert_envelope(response, 411, "length_required")
    assert (
        body["detail"]
        == {
            "en": "Send the request body with a Content-Length header.",
            "ru": "Отправьте тело запроса с заголовком Content-Length.",  # noqa: RUF001 - Russian
        }[language]
    )


def test_unknown_fields_are_ignored(api, outbox):
    response = api.post("/api/v1/auth/code/", {"phone": "+79110000000", "is_staff": True}, format="json")

    assert response.status_code == 200


def test_other_script_digits_in_a_phone_are_read_as_digits(api, outbox):
    response = api.post("/api/v1/auth/code/", {"phone": "+٧٩١١٠٠٠٠٠٠٠"}, format="json")

    assert response.status_code == 200
    assert response.json()["phone"] == "+79110000000"


@pytest.mark.parametrize(
    "typed",
    [
        # All full-width, as CJK input methods type it.
        "\uff0b\uff17\uff19\uff11\uff11\uff10\uff10\uff10\uff10\uff10\uff10\uff10",
        "\uff0b7\u3000\uff08911\uff09\u3000000\uff0d00\uff0d00",  # full-width plus, brackets and dashes
        "+7 911 000\uff0e00\uff0e00",
    ],
)
def test_full_width_signs_in_a_phone_read_as_their_ascii_forms(api, outbox, typed):
    # Full-width digits were read, but a full-width plus or bracket made the whole number invalid_phone.
    response = api.post("/api/v1/auth/code/", {"phone": typed}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+79110000000"


@pytest.mark.parametrize("space", ["\u00a0", "\u2007", "\u2009", "\u202f", "\u3000"])
def test_any_unicode_space_in_a_phone_is_a_space(api, outbox, space):
    response = api.post("/api/v1/auth/code/", {"phone": f"+7{space}911{space}000-00-00"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+79110000000"


@pytest.mark.parametrize(
    "typed",
    [
        "\u202a+7 911 000-00-00\u202c",  # as copied from a contacts app
        "\u2066+7 911 000 00 00\u2069",
        "\ufeff+79110000000",
        "+7\u200b911\u200d0000000",
        "+7 911 000\u201100\u201100",  # non-breaking hyphens
        "+7 911 000\u201300\u201300",  # en dashes
    ],
)
def test_invisible_characters_and_typographic_dashes_in_a_phone_are_read_past(api, outbox, typed):
    response = api.post("/api/v1/auth/code/", {"phone": typed}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+79110000000"


def test_a_phone_of_invisible_characters_alone_is_still_invalid(api):
    response = api.post("/api/v1/auth/code/", {"phone": "\u200b\u2066\u2069"}, format="json")

    assert_envelope(response, 400, "invalid_phone")


def test_other_script_digits_in_a_code_are_invalid_code(api, outbox):
    response = api.post("/api/v1/auth/token/", {"phone": "+79110000000", "code": "١٢٣٤"}, format="json")

    assert_envelope(response, 400, "invalid_code")


def test_missing_fields_list_every_field(api):
    response = api.post("/api/v1/auth/token/", {}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert set(body["errors"]) == {"phone", "code"}


def test_unknown_api_path_is_json_404(api):
    assert_envelope(api.get("/api/v1/nope/"), 404, "not_found")


def test_wrong_method_is_json_405(api):
    assert_envelope(api.get("/api/v1/auth/code/"), 405, "method_not_allowed")


@pytest.mark.parametrize("accept", ["text/html", "application/xml;q=1, */*;q=0"])
def test_the_api_answers_json_whatever_accept_says(api, outbox, accept):
    response = api.post("/api/v1/auth/code/", {"phone": "+79110000000"}, format="json", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["phone"] == "+79110000000"


def test_health_endpoints(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    ("path", "body"), [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ok", "database": "ok"})]
)
def test_health_probes_answer_whatever_host_they_name_over_plain_http(api, settings, path, body):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    response = api.get(path, HTTP_HOST="10.0.0.5:8000")

    assert (response.status_code, response.json()) == (200, body)
    assert api.get("/api/v1/invite-codes/ABCDEF/", HTTP_HOST="10.0.0.5:8000").status_code == 400


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_health_probes_refuse_other_methods_with_the_json_envelope(path, method):
    # With the CSRF check on, as for a real client: a probe configured to POST got Django's HTML
    # "CSRF verification failed" page, which names the wrong reason.
    response = Client(enforce_csrf_checks=True).generic(method, path, HTTP_HOST="10.0.0.5:8000")

    assert_envelope(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"
    assert "no-store" in response["Cache-Control"]


def test_a_probe_s_refusal_is_in_the_language_it_is_asked_in(api):
    # The probes answer before the language middleware: a thread's last language was used instead.
    russian = api.post("/healthz", HTTP_ACCEPT_LANGUAGE="ru")
    english = api.post("/healthz", HTTP_ACCEPT_LANGUAGE="en")
    unasked = api.post("/healthz")

    assert russian.json()["detail"] == "Метод «POST» не разрешён."
    assert "\\u04" not in russian.content.decode()
    assert english.json()["detail"] == unasked.json()["detail"] == 'Method "POST" not allowed.'
    assert russian["Content-Language"] == "ru"


def test_forged_cursor_is_404_not_500(authed):
    forged = base64.b64encode(b"p=garbage").decode()

    response = authed().get(f"/api/v1/me/invitees/?cursor={forged}")

    assert_envelope(response, 404)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_deeply_nested_json_is_a_parse_error(api, authed, url):
    client = authed() if url.startswith("/api/v1/me") else api
    response = client.generic("POST", url, "[" * 30_000, content_type="application/json")

    assert_envelope(response, 400, "parse_error")


@pytest.mark.parametrize("debug", [False, True])
def test_api_paths_without_a_slash_are_json_404_in_any_mode(api, settings, debug):
    settings.DEBUG = debug

    response = api.post("/api/v1/auth/code", {"phone": "+79110000000"}, format="json")

    body = assert_envelope(response, 404, "not_found")
    assert "/api/v1/auth/code/" in body["detail"]


def test_unknown_api_path_is_json_404_with_debug_on(api, settings):
    settings.DEBUG = True

    assert_envelope(api.get("/api/v2/nothing/"), 404, "not_found")


def test_too_large_reply_carries_cors_headers(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    body = json.dumps({"phone": "+79110000000", "padding": "x" * 200_000})

    response = api.generic(
        "POST", "/api/v1/auth/code/", body, content_type="application/json", HTTP_ORIGIN="https://app.example.com"
    )

    assert response.status_code == 413
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_browser_clients_may_read_retry_after(api, settings):
    # Retry-After is not a header browsers show a page's scripts unless the reply says they may.
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    origin = {"HTTP_ORIGIN": "https://app.example.com"}
    api.post("/api/v1/auth/code/", {"phone": "+79110000000"}, format="json", **origin)

    response = api.post("/api/v1/auth/code/", {"phone": "+79110000000"}, format="json", **origin)

    assert response.status_code == 429 and response["Retry-After"]
    assert "retry-after" in response["Access-Control-Expose-Headers"].lower().split(", ")


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/auth/code", "/api/nothing"])
def test_unknown_api_posts_are_json_404_for_clients_without_csrf_cookies(path):
    client = APIClient(enforce_csrf_checks=True)

    response = client.post(path, {"phone": "+79110000000"}, format="json")

    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("position", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_cursor_at_the_edge_of_time_is_404_on_any_database(authed, position):
    forged = base64.b64encode(urlencode({"p": position, "r": "0"}).encode()).decode()

    response = authed().get(f"/api/v1/me/invitees/?cursor={forged}")

    assert_envelope(response, 404)


@pytest.mark.parametrize(
    "tokens",
    [
        {"p": "2024-01-01T00:00:00+00:00", "i": "x"},
        {"p": "2024-01-01T00:00:00+00:00", "i": "0"},
        {"p": "2024-01-01T00:00:00+00:00", "i": "-5"},
        {"p": "2024-01-01T00:00:00+00:00", "i": str(2**63)},
        {"i": "5"},
    ],
)
def test_a_forged_row_in_the_cursor_is_404_on_any_database(authed, tokens):
    forged = base64.b64encode(urlencode(tokens).encode()).decode()

    response = authed().get(f"/api/v1/me/invitees/?cursor={forged}")

    assert_envelope(response, 404)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",  # nothing of base64's alphabet: it decoded to nothing, the first page
        "cD0yMDI2LTExLTMwVDIy!!!",
        b64("x=1"),  # no token of a cursor
        b64("p=2026-11-30T22:16:51Z&i=+7"),
        b64("r=1&r=0"),
        b64("r=5"),
        b64("p=2026-11-30&i=7"),  # a real cursor cut short: the day alone read as its midnight
        b64("p=2026-11-30T22&i=7"),
        b64("p=2026-11-30T22:16:51&i=7"),  # without its "Z"
        b64("p=2024-W01-1"),  # an ISO week date
        b64("p=2024-01-01 00:00"),
        b64("p=2024-01-01T00:00Z"),
    ],
)
def test_a_cursor_the_api_did_not_write_is_404_not_another_page(authed, cursor):
    client = authed()
    make_invitees(client.user, 3)

    response = client.get("/api/v1/me/invitees/", {"cursor": cursor})

    assert_envelope(response, 404, "not_found")


def test_an_empty_cursor_is_the_first_page(authed):
    client = authed()
    make_invitees(client.user, 3)

    response = client.get("/api/v1/me/invitees/", {"cursor": "", "page_size": 2})

    assert response.status_code == 200
    assert response.json()["results"] == client.get("/api/v1/me/invitees/", {"page_size": 2}).json()["results"]


@pytest.mark.parametrize("reverse", ["0", "1"])
@pytest.mark.parametrize("position", ["2024-01-01T00:00:00+20:00", "2024-01-01 00:00:00.5-15:59"])
def test_cursor_positions_python_reads_are_pages_on_any_database(authed, position, reverse):
    # Offsets past 15:59 are valid to Python but not to PostgreSQL.
    client = authed()
    make_invitees(client.user, 3)
    forged = base64.b64encode(urlencode({"p": position, "r": reverse}).encode()).decode()

    responses = [client.get(f"/api/v1/me/invitees/?cursor={forged}") for _ in range(2)]

    assert [response.status_code for response in responses] == [200, 200], responses[0].content
    assert client.get("/api/v1/me/invitees/").status_code == 200


def test_an_unknown_host_is_one_warning_line_not_a_traceback(api, settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    (handler,) = [h for h in logging.getLogger().handlers if any(isinstance(f, RefusalsAsOneLine) for f in h.filters)]
    written = io.StringIO()
    stream = handler.setStream(written)
    try:
        response = api.get("/api/v1/invite-codes/ABCDEF/", HTTP_HOST="scanner.example")
    finally:
        handler.setStream(stream)

    assert response.status_code == 400
    (line,) = written.getvalue().splitlines()
    assert " WARNING django.security.DisallowedHost " in line or '"levelname": "WARNING"' in line, line
    assert "scanner.example" in line


@pytest.mark.parametrize("code", ["A%2FB", "%2F", "..%2F", "ABC%2FDEF%2F"])
def test_an_invite_code_with_a_slash_is_not_found_as_the_docs_say(api, code):
    # The schema documents invite_code_not_found for this 404; a slash made it the router's not_found.
    response = api.get(f"/api/v1/invite-codes/{code}/")

    assert_envelope(response, 404, "invite_code_not_found")
