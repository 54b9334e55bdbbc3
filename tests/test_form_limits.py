"""Form bodies: Django's 1,000 fields for everyone, more only for staff (the admin's "select all")."""

import pytest
from django.test import Client
from django.test.client import MULTIPART_CONTENT

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def anonymous_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32  # past the cookie check: the token check reads the form
    return client


def urlencoded(fields: int) -> str:
    return "&".join(f"f{number}=" for number in range(fields))


@pytest.mark.parametrize("url", ["/admin/login/", "/", "/nothing/"])
def test_more_than_a_thousand_fields_from_someone_not_staff_are_refused_unread(url):
    # The CSRF check reads every form posted; 100,000 fields cost a worker a second or two.
    assert anonymous_client().post(url, urlencoded(1_001), content_type=FORM).status_code == 400


def test_more_than_a_thousand_multipart_fields_are_refused_too():
    fields = {f"f{number}": "" for number in range(1_001)}

    assert anonymous_client().post("/admin/login/", fields, content_type=MULTIPART_CONTENT).status_code == 400


@pytest.mark.parametrize("content_type", [FORM, MULTIPART_CONTENT])
def test_a_thousand_fields_are_read(content_type):
    body = urlencoded(1_000) if content_type == FORM else {f"f{number}": "" for number in range(1_000)}

    # Read, then refused by the CSRF check for the token they lack.
    assert anonymous_client().post("/admin/login/", body, content_type=content_type).status_code == 403


class BrokenBody:
    """A client that went away after its headers."""

    def read(self, *args):
        raise OSError("connection reset")

    readline = read


def test_a_form_whose_client_went_away_is_refused_as_before_not_a_500():
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post("/admin/login/", "f=1", content_type=FORM, **{"wsgi.input": BrokenBody()})

    assert response.status_code == 403


@pytest.mark.parametrize("url", ["/admin/login/", "/"])
def test_a_form_sent_to_a_host_not_served_is_refused_unread(url):
    # The host is refused before the form's fields are counted, and the 400 page must not read it:
    # Django's reads the form for its CSRF token, and past 100,000 fields that read failed with a 500.
    response = anonymous_client().post(url, urlencoded(100_001), content_type=FORM, HTTP_HOST="elsewhere.example")

    assert response.status_code == 400


def test_a_multipart_form_with_a_length_that_is_no_number_is_refused_as_before_not_a_500():
    # gunicorn refuses such a header itself; other servers may pass it on. Django's multipart parser
    # reads it as no body (a URL-encoded form with it is Django's own 500).
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post("/admin/login/", {"f": "1"}, content_type=MULTIPART_CONTENT, CONTENT_LENGTH="abc")

    assert response.status_code == 403


def test_a_url_encoded_form_with_a_length_that_is_no_number_gets_the_500_page():
    # Django's own failure to read it; the error page must not try to read it again.
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post("/admin/login/", "f=1", content_type=FORM, CONTENT_LENGTH="abc", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 500
    assert "Ошибка сервера" in response.content.decode()
