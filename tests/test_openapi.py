import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tests.conftest import code_sent_to
from tests.test_i18n import is_russian

CHECKED_IN = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"

ERROR_CODES = {
    "invalid_phone",
    "phone_region_not_allowed",
    "phone_cannot_receive_sms",
    "invalid_code",
    "code_expired",
    "throttled",
    "sms_delivery_failed",
    "invite_code_not_found",
    "own_invite_code",
    "invite_code_already_activated",
    "invite_cycle",
    "not_authenticated",
    "token_not_valid",
    "request_too_large",
    "length_required",
    "parse_error",
    "unsupported_media_type",
    "service_unavailable",
    "not_found",
    "activation_conflict",
    "account_disabled",
    "invalid",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The schema as the code describes it now, validated, with any generator warning failing the test."""
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--lang", "en", "--file", str(path), "--validate", "--fail-on-warn")
    return path.read_text()


@pytest.fixture(scope="module")
def schema(generated):
    return yaml.safe_load(generated)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_checked_in_schema_matches_the_code(generated):
    assert CHECKED_IN.read_text() == generated, "docs/openapi.yaml is stale: run `make schema` and commit it"


def test_every_operation_is_tagged_summarised_and_lists_its_error_codes(schema):
    for name, operation in operations(schema):
        assert operation.get("tags"), name
        assert operation.get("summary"), name
        assert "Error codes: `" in operation["description"], name


def test_every_error_reply_is_the_envelope(schema):
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
    for name, operation in operations(schema):
        errors = {status: reply for status, reply in operation["responses"].items() if int(status) >= 400}
        assert "503" in errors, name
        for status, reply in errors.items():
            content = reply["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (name, status)
            for example in content["examples"].values():
                assert example["value"]["code"] in reply["description"], (name, status)


def operation(schema, operation_id):
    (found,) = (operation for _, operation in operations(schema) if operation["operationId"] == operation_id)
    return found


def error_example(schema, operation_id, status, code):
    examples = operation(schema, operation_id)["responses"][status]["content"]["application/json"]["examples"]
    (example,) = (example["value"] for example in examples.values() if example["value"]["code"] == code)
    return example


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"phone": "12345"}', "400", "invalid_phone"),
        (b"{not json", "400", "parse_error"),
        (b'{"phone": "+79110000000", "padding": "' + b"x" * 70_000 + b'"}', "413", "request_too_large"),
    ],
)
def test_error_examples_are_replies_the_api_gives(schema, api, body, status, code):
    response = api.generic("POST", "/api/v1/auth/code/", body, content_type="application/json")

    assert (str(response.status_code), response.json()) == (
        status,
        error_example(schema, "v1_auth_code_create", status, code),
    )


@pytest.mark.django_db
def test_both_forms_of_a_refused_code_are_documented(schema, api, outbox):
    # A code that is not 4 digits is refused with its field under `errors`; a wrong one with only `detail`.
    phone = "+79110000002"
    assert api.post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code == 200
    wrong = "1111" if code_sent_to(outbox, phone) != "1111" else "2222"

    replies = [api.post("/api/v1/auth/token/", {"phone": phone, "code": code}, format="json") for code in ("12", wrong)]

    assert [reply.status_code for reply in replies] == [400, 400]
    documented = operation(schema, "v1_auth_token_create")["responses"]["400"]["content"]["application/json"]
    forms = [
        example["value"] for example in documented["examples"].values() if example["value"]["code"] == "invalid_code"
    ]
    assert forms == [reply.json() for reply in replies]


@pytest.mark.django_db
@pytest.mark.parametrize("operation_id", ["v1_auth_token_refresh_create", "v1_auth_logout_create"])
def test_a_spent_refresh_token_gets_the_documented_reply(schema, api, sign_in, operation_id):
    # What a client retrying a refresh or a logout meets.
    refresh = sign_in()["refresh"]
    assert api.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json").status_code == 204
    path = {
        "v1_auth_token_refresh_create": "/api/v1/auth/token/refresh/",
        "v1_auth_logout_create": "/api/v1/auth/logout/",
    }

    response = api.post(path[operation_id], {"refresh": refresh}, format="json")

    assert response.json() == error_example(schema, operation_id, "401", "token_not_valid")


@pytest.mark.django_db
def test_a_bad_cursor_gets_the_documented_reply(schema, api, sign_in):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in()['access']}")

    response = api.get("/api/v1/me/invitees/?cursor=not-a-cursor")

    assert response.json() == error_example(schema, "v1_me_invitees_list", "404", "not_found")


@pytest.mark.django_db
def test_example_moments_have_the_form_of_the_replies(schema, api, sign_in):
    # UTC with "Z" and microseconds (left out when they are zero): a client's parser must take both.
    moment = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in()['access']}")
    reply = api.get("/api/v1/me/").json()
    profile = schema["paths"]["/api/v1/me/"]["get"]["responses"]["200"]["content"]["application/json"]
    (example,) = profile["examples"].values()

    assert moment.fullmatch(reply["date_joined"]), reply["date_joined"]
    assert moment.fullmatch(example["value"]["date_joined"]) and "." in example["value"]["date_joined"]


def test_every_error_code_is_documented(generated):
    documented = set(re.findall(r"code: ([a-z_]+)\n", generated))

    assert documented == ERROR_CODES


def test_limits_are_documented_with_retry_after(schema):
    code = schema["paths"]["/api/v1/auth/code/"]["post"]["responses"]

    assert "Retry-After" in code["429"]["headers"]
    assert "Retry-After" not in code["200"].get("headers", {})


def test_authenticated_operations_need_the_bearer_scheme(schema):
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    profile = schema["paths"]["/api/v1/me/"]["get"]
    assert profile["security"] == [{"jwtAuth": []}]
    assert set(profile["responses"]["401"]["content"]["application/json"]["examples"]) == {
        "NotAuthenticated",
        "TokenNotValid",
    }
    assert schema["paths"]["/api/v1/auth/code/"]["post"]["security"] == [{}]


def test_description_explains_sign_in_and_limits(schema):
    description = schema["info"]["description"]

    for words in (
        "/api/v1/auth/code/",
        "/api/v1/auth/token/",
        "Bearer",
        "Retry-After",
        "60 seconds",
        "Accept-Language",
    ):
        assert words in description


class AssetLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


# Production serves collectstatic's hashed files; here the finders serve them unhashed, same paths otherwise.
UNHASHED_STATIC = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@override_settings(STORAGES=UNHASHED_STATIC)
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_need_no_internet(client, page):
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    parser = AssetLinks()
    parser.feed(html)
    assert parser.links, "the page loads its viewer"
    assert all(link.startswith(("/static/", "data:")) for link in parser.links), parser.links
    # Nothing is fetched from a CDN, in tags or inline scripts (the OpenAPI spec URL is relative).
    assert not re.search(r"""["'(]https?://""", html), re.findall(r"https?://[^\s\"')]+", html)
    if page == "/api/docs/":
        assert '"validatorUrl": null' in html  # Swagger UI's default badge comes from validator.swagger.io
    for link in (link for link in parser.links if link.startswith("/")):
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content])


def test_schema_is_served_as_checked_in(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert yaml.safe_load(response.content) == yaml.safe_load(CHECKED_IN.read_text())


def test_schema_is_served_as_json_with_russian_examples(client):
    response = client.get("/api/schema/?format=json&lang=ru")

    responses = response.json()["paths"]["/api/v1/auth/token/"]["post"]["responses"]

    def example(status, name):
        return responses[status]["content"]["application/json"]["examples"][name]["value"]

    assert example("400", "InvalidCode")["detail"] == "Неверный код."
    # The envelope's own examples too, not only the domain's: every text a Russian reply would have.
    assert example("400", "Invalid") == {
        "code": "invalid",
        "detail": "Неверные данные.",
        "errors": {"field": ["Обязательное поле."]},
    }
    assert example("429", "Throttled")["detail"] == "Слишком много запросов. Повторите попытку через 42 секунды."
    for status, name in [("400", "ParseError"), ("413", "RequestTooLarge"), ("415", "UnsupportedMediaType")]:
        assert is_russian(example(status, name)["detail"]), (status, name)


def test_field_rules_are_in_the_schema(schema):
    code = schema["components"]["schemas"]["ObtainTokenRequest"]["properties"]["code"]
    (page_size,) = [
        parameter
        for parameter in schema["paths"]["/api/v1/me/invitees/"]["get"]["parameters"]
        if parameter["name"] == "page_size"
    ]

    assert code["maxLength"] == settings.OTP_LENGTH
    assert re.fullmatch(code["pattern"], "1234") and not re.fullmatch(code["pattern"], "12a4")
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}


def test_invitee_page_example_links_have_the_servers_form(schema):
    page = schema["components"]["schemas"]["PaginatedListInviteesResponseList"]["properties"]
    reply = schema["paths"]["/api/v1/me/invitees/"]["get"]["responses"]["200"]["content"]["application/json"]
    (example,) = reply["examples"].values()

    for link in (page["next"]["example"], page["previous"]["example"], example["value"]["next"]):
        assert re.fullmatch(r"https://[a-z.]+/api/v1/me/invitees/\?cursor=[A-Za-z0-9_-]+", link), link
