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

sent: list[str] = []


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


# Per-IP limits are lifted by pytest.ini (AUTH_IP_RATE); the per-phone limits still answer 429 for
# repeated phones, which the schema documents.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_survives_and_matches_its_schema(case, base_url, bearer):
    sent.append(case.operation.label)
    case.call_and_validate(base_url=base_url, headers=bearer, checks=CHECKS)


def test_fuzzing_covered_every_operation_with_enough_cases():
    if not sent:
        pytest.skip("the fuzz test was not selected")
    assert set(sent) == {result.ok().label for result in schema.get_all_operations()}
    assert len(sent) >= MIN_CASES
