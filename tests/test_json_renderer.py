"""The API's JSON renderer writes the same bytes as DRF's own, only faster."""

import dataclasses
import datetime
import decimal
import json
import uuid
from zoneinfo import ZoneInfo

import orjson
import pytest
from django.db import connection
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from project import renderers
from project.renderers import FastJSONRenderer
from referrals.models import Referral
from referrals.services import activate_invite_code

UTC = datetime.UTC
MOSCOW = ZoneInfo("Europe/Moscow")

PAYLOADS = {
    "profile": {
        "id": 1,
        "phone": "+79110000000",
        "first_name": "Иван",
        "last_name": "",
        "date_joined": datetime.datetime(2026, 11, 29, 19, 0, 0, 123456, tzinfo=UTC),
        "invite_code": "ABC234",
        "invite_url": None,
        "activated_invite_code": None,
        "invited_by": None,
        "activated_at": datetime.datetime(2026, 11, 29, 19, 0, tzinfo=UTC),  # no microseconds: none written
        "invitees": [f"+7911000{n:04d}" for n in range(100)],
        "invitees_count": 100_000,
    },
    "page": {
        "next": "http://127.0.0.1/api/v1/me/invitees/?cursor=cD0yMDI2LTExLTI5KzE5JTNBMzE%3D",
        "previous": None,
        "results": ReturnList(
            [{"phone": "+79110000001", "activated_at": datetime.datetime(2026, 1, 1, tzinfo=UTC)}], serializer=None
        ),
    },
    "error": {
        "code": "invalid",
        "detail": gettext_lazy("Invalid input."),
        "errors": ReturnDict({"phone": [ErrorDetail("Введите номер.", code="invalid_phone")]}, serializer=None),
    },
    "other zones and types": {
        "moscow": datetime.datetime(2026, 6, 1, 12, 30, 5, 1, tzinfo=MOSCOW),
        "london in winter": datetime.datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/London")),
        "naive": datetime.datetime(2026, 1, 1, 0, 0, 1),
        "date": datetime.date(2026, 11, 29),
        "time": datetime.time(23, 59, 59, 10),
        "timedelta": datetime.timedelta(minutes=15),
        "decimal": decimal.Decimal("12.50"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "set": {1},
        "bytes": b"raw",
        "line separators": "a\u2028b\u2029c",
        "nested": [[{"deep": (True, False, None, 0, -1)}]],
    },
    # orjson refuses these, and DRF renders them again.
    "integers past 64 bits": {"big": [2**70, -(2**64)]},
    "keys that are not strings": {1: "one", None: "none", False: "false", 2.5: "float"},
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_same_bytes_as_drf(payload):
    assert FastJSONRenderer().render(payload) == JSONRenderer().render(payload)


def with_fragments(payload):
    """The profile with its invitees as the JSON PostgreSQL keeps (migration referrals/0006)."""
    return {**payload, "invitees": orjson.Fragment(json.dumps(payload["invitees"], separators=(",", ":")))}


@pytest.mark.parametrize("name", ["profile", "integers past 64 bits"])  # orjson's path, and DRF's after a refusal
def test_json_carried_as_it_is_gives_the_same_bytes_as_drf(name):
    payload = {**PAYLOADS["profile"], **PAYLOADS[name]}

    assert FastJSONRenderer().render(with_fragments(payload)) == JSONRenderer().render(payload)


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresqls_json_of_a_list_is_what_drf_writes():
    # As migration referrals/0006 keeps the lists, with what JSON escapes or DRF escapes besides.
    phones = [*PAYLOADS["profile"]["invitees"][:3], 'a"b\\c/d', "\u0001\t\n", "é", "a\u2028b\u2029c", "\x7f"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_json(array_to_json(%s::varchar[]))::text", [phones])
        (kept,) = cursor.fetchone()
    payload = {**PAYLOADS["profile"], "invitees": phones}

    assert FastJSONRenderer().render({**payload, "invitees": orjson.Fragment(kept)}) == JSONRenderer().render(payload)


@dataclasses.dataclass
class Selected:
    phone: str
    is_active: bool


def test_what_drf_refuses_is_refused_the_same_way():
    refused = (
        {"time": datetime.time(1, tzinfo=UTC)},
        {"object": object()},
        Selected("+79110000000", is_active=False),  # a view that forgot its serializer sends nothing
        {datetime.datetime(2026, 1, 1, tzinfo=UTC): "a key that is not a string"},
    )
    for payload in refused:
        with pytest.raises((TypeError, ValueError)) as drf:
            JSONRenderer().render(payload)
        with pytest.raises(drf.type):
            FastJSONRenderer().render(payload)


def test_orjson_writes_the_reply_without_calling_back_into_python(monkeypatch):
    # Datetimes, strings and ErrorDetail are orjson's own work: the reason for the renderer.
    payload = {**PAYLOADS["profile"], "errors": {"phone": [ErrorDetail("Введите номер.", code="invalid_phone")]}}
    expected = JSONRenderer().render(payload)

    def refuse(*args, **kwargs):
        raise AssertionError("the standard library's encoder or DRF's default() was used")

    monkeypatch.setattr("rest_framework.renderers.json.dumps", refuse)
    monkeypatch.setattr(renderers._encoder, "default", refuse)

    assert FastJSONRenderer().render(payload) == expected


def test_nothing_renders_as_no_body():
    assert FastJSONRenderer().render(None) == b""


def test_an_indent_asked_for_is_honoured():
    payload = {"a": [1, 2]}
    for media_type in ("application/json; indent=4", "application/json; indent=0"):
        assert FastJSONRenderer().render(payload, media_type) == JSONRenderer().render(payload, media_type)


def test_the_api_replies_through_it(api, authed, make_user):
    inviter = make_user(first_name="Иван\u2028")
    for number in range(3):
        activate_invite_code(
            user=make_user(first_name=f"Пётр{number}"), code=Referral.objects.get(user=inviter).invite_code
        )
    client = authed(inviter)
    replies = [
        client.get("/api/v1/me/"),
        client.get("/api/v1/me/invitees/?page_size=2"),
        client.get("/api/v1/me/invitees/?cursor=forged"),
        api.get("/api/v1/invite-codes/ZZZZZZ/", HTTP_ACCEPT_LANGUAGE="ru"),
        api.post("/api/v1/auth/code/", {"phone": "x"}, format="json"),
        api.get("/api/v1/me/"),
    ]

    assert [reply.status_code for reply in replies] == [200, 200, 404, 404, 400, 401]
    for reply in replies:
        assert isinstance(reply.accepted_renderer, FastJSONRenderer)
        assert reply["Content-Type"] == "application/json"
        assert reply.content == DRFRenderer().render(reply.data)


class DRFRenderer(JSONRenderer):
    encoder_class = renderers.JSONEncoder  # DRF's, which also writes the profile's invitees kept as JSON
