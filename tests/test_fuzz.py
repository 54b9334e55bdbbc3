"""Schema-driven fuzzing: generated requests for every operation of docs/openapi.yaml, sent over HTTP to
the app served on a real socket, must never get a server error and must get what the schema promises."""

import os

import pytest
import schemathesis
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pytest_django.live_server_helper import LiveServer
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts.tokens import issue_tokens
from project import schema_examples
from referrals.models import Referral

schema = schemathesis.openapi.from_path(settings.BASE_DIR / "docs" / "openapi.yaml")

# Not negative_data_rejection: DRF is deliberately lenient where the schema cannot say so (a number sent
# for a string field is taken as its text, a malformed page_size falls back to the default page size).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
    unsupported_method,
]

# FUZZ_EXAMPLES=2000 make test digs deeper; CI keeps the suite fast.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "150"))
MIN_CASES = 1000

sent: list[tuple[str, int]] = []


@pytest.fixture(scope="module")
def server():
    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def base_url(server, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    return server.url


@pytest.fixture
def bearer(make_user):
    """A real access token, so authenticated operations are fuzzed past authentication."""
    return {"Authorization": f"Bearer {issue_tokens(user=make_user())['access']}"}


@pytest.fixture
def examples_come_true(settings, make_user):
    """The schema's examples reach the success replies: its phone signs in with its code, its invite code exists."""
    settings.OTP_TEST_PHONES = {"+79110000000": "1234"}
    inviter = make_user("+79120000000")
    Referral.objects.filter(user=inviter).update(invite_code="H4TZ9P")


# Per-IP limits are lifted by pytest.ini (AUTH_IP_RATE); the per-phone limits still answer 429 for
# repeated phones, which the schema documents.
@pytest.mark.usefixtures("examples_come_true")
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_survives_and_matches_its_schema(case, base_url, bearer, make_user):
    if isinstance(case.body, dict) and case.body.get("refresh") == schema_examples.REFRESH:
        case.body = {**case.body, "refresh": issue_tokens(user=make_user())["refresh"]}  # the example, made real
    response = case.call_and_validate(base_url=base_url, headers=bearer, checks=CHECKS)
    sent.append((case.operation.label, response.status_code))


def test_fuzzing_covered_every_operation_with_enough_cases():
    if not sent:
        pytest.skip("the fuzz test was not selected")
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert {label for label, _ in sent} == operations
    assert {label for label, status in sent if status < 300} == operations, "every operation reached success"
    assert len(sent) >= MIN_CASES
