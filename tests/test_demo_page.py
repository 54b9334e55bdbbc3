import re

import pytest

pytestmark = pytest.mark.django_db


def test_demo_page_is_html_with_labels_and_its_own_static_files(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for label in ("Phone number", "Code from the SMS", "Your invite code", "Invite code you received", "Sign out"):
        assert label in html
    assert '<meta name="viewport"' in html
    assert 'src="/static/demo/demo.js"' in html
    assert 'href="/static/demo/demo.css"' in html
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_static_files_are_served_by_the_app(client):
    for path, content_type in (("/static/demo/demo.js", "text/javascript"), ("/static/demo/demo.css", "text/css")):
        response = client.get(path)

        assert response.status_code == 200
        assert response["Content-Type"].startswith(content_type)


def test_every_field_has_a_label(client):
    html = client.get("/").content.decode()

    for field in ("phone", "code", "invite-code", "first-name", "last-name", "own-code", "invite-url"):
        assert f'id="{field}"' in html
        assert f'<label for="{field}"' in html


def test_a_form_sent_before_the_script_runs_puts_nothing_in_the_url(client):
    # A GET form would send the phone, the code or the names in the address, which logs and history keep.
    html = client.get("/").content.decode()

    forms = re.findall(r"<form\b[^>]*>", html)
    assert len(forms) == 5
    assert all('method="post"' in form for form in forms), forms


def test_the_log_hint_only_where_codes_go_to_the_log(client, settings):
    # Under `docker compose up` DEBUG is off and the console backend logs the codes; with a provider, even
    # with DEBUG on, they are not in the log.
    settings.DEBUG, settings.SMS_BACKEND = False, "console"
    assert "the code is in its log" in client.get("/").content.decode()

    settings.DEBUG, settings.SMS_BACKEND = True, "memory"
    assert "the code is in its log" not in client.get("/").content.decode()

    settings.SMS_BACKEND = "accounts.sms_backends.ConsoleBackend"  # named by its path, as SMS_BACKEND allows
    assert "the code is in its log" in client.get("/").content.decode()


def test_only_get(client):
    assert client.post("/").status_code == 405
