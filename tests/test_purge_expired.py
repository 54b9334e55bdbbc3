"""`manage.py purge_expired`: what no longer counts goes, what still counts stays."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import CheckFailure, CodeSend, HourlySendBudget
from tests.conftest import code_sent_to

pytestmark = pytest.mark.django_db

PHONE = "+79110000001"


def purge() -> str:
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    return out.getvalue()


def test_sends_refusals_budgets_and_tokens_past_their_use_go(api, outbox, make_user):
    day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    CodeSend.objects.create(phone="+79110000002", sent_at=day_ago)
    CheckFailure.objects.create(phone="+79110000002", failed_at=day_ago)
    HourlySendBudget.objects.create(hour=day_ago.replace(minute=0, second=0, microsecond=0), used=3)
    user = make_user()
    expired = OutstandingToken.objects.create(user=user, jti="old", token="x", expires_at=day_ago)
    BlacklistedToken.objects.create(token=expired)

    report = purge()

    assert not CodeSend.objects.exists()
    assert not CheckFailure.objects.exists()
    assert not HourlySendBudget.objects.exists()
    assert not OutstandingToken.objects.exists()
    assert not BlacklistedToken.objects.exists()
    assert report == "Deleted 1 code send(s), 1 refused check(s), 1 hourly budget(s) and 1 expired refresh token(s).\n"


def test_what_still_counts_stays_and_still_limits(api, outbox, make_user):
    assert api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json").status_code == 200
    wrong = f"{(int(code_sent_to(outbox, PHONE)) + 1) % 10000:04d}"
    assert api.post("/api/v1/auth/token/", {"phone": PHONE, "code": wrong}, format="json").status_code == 400
    live = OutstandingToken.objects.create(
        user=make_user(), jti="live", token="x", expires_at=timezone.now() + timedelta(days=1)
    )

    purge()

    assert CodeSend.objects.filter(phone=PHONE).count() == 1
    assert CheckFailure.objects.filter(phone=PHONE).count() == 1
    assert HourlySendBudget.objects.get().used == 1
    assert OutstandingToken.objects.filter(pk=live.pk).exists()
    again = api.post("/api/v1/auth/code/", {"phone": PHONE}, format="json")
    assert again.status_code == 429  # the minute between two codes still holds
