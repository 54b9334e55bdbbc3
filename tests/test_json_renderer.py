"""The API's JSON renderer writes the same bytes as DRF's own, only faster."""

import datetime
import decimal
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from project.renderers import FastJSONRenderer

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
        1: "integer key",
    },
    "integers past 64 bits": {"big": [2**70, -(2**64)]},  # orjson refuses them: DRF's path
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_same_bytes_as_drf(payload):
    assert FastJSONRenderer().render(payload) == JSONRenderer().render(payload)


def test_what_drf_refuses_is_refused_the_same_way():
    for payload in ({"time": datetime.time(1, tzinfo=UTC)}, {"object": object()}):
        with pytest.raises((TypeError, ValueError)) as drf:
            JSONRenderer().render(payload)
        with pytest.raises(drf.type):
            FastJSONRenderer().render(payload)


def test_nothing_renders_as_no_body():
    assert FastJSONRenderer().render(None) == b""


def test_an_indent_asked_for_is_honoured():
    payload = {"a": [1, 2]}
    for media_type in ("application/json; indent=4", "application/json; indent=0"):
        assert FastJSONRenderer().render(payload, media_type) == JSONRenderer().render(payload, media_type)


def test_the_api_replies_through_it(authed):
    client = authed()

    response = client.get("/api/v1/me/")

    assert isinstance(response.accepted_renderer, FastJSONRenderer)
    assert response["Content-Type"] == "application/json"
    assert response.content == JSONRenderer().render(response.data)
