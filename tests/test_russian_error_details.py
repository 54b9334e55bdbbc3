"""The API errors' whole details, Russian and English, written out: a swapped or altered translation fails."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import CheckFailure, PhoneChallenge
from referrals.models import Referral
from tests.conftest import code_sent_to

pytestmark = pytest.mark.django_db

CODE_URL = "/api/v1/auth/code/"
TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"
INVITE_URL = "/api/v1/me/invite/"
PHONE = "+79110000001"
# Twenty past the hour: the hour's budget frees up in exactly 40 minutes, a wait no slow request can change.
FROZEN_NOW = datetime(2030, 1, 1, 12, 20, tzinfo=UTC)


def code_of(user):
    return Referral.objects.get(user=user).invite_code


def wrong(code):
    return f"{(int(code) + 1) % 10000:04d}"


def freeze_time(ctx):
    ctx.monkeypatch.setattr(timezone, "now", lambda: FROZEN_NOW)


def request_code(ctx, **language):
    return ctx.api.post(CODE_URL, {"phone": PHONE}, format="json", **language)


def check(ctx, code, **language):
    return ctx.api.post(TOKEN_URL, {"phone": PHONE, "code": code}, format="json", **language)


def activate(client, code, **language):
    return client.post(INVITE_URL, {"invite_code": code}, format="json", **language)


def code_expired(ctx, **language):
    request_code(ctx)
    PhoneChallenge.objects.filter(phone=PHONE).update(expires_at=timezone.now() - timedelta(seconds=1))
    return check(ctx, code_sent_to(ctx.outbox, PHONE), **language)


def invalid_code(ctx, **language):
    request_code(ctx)
    return check(ctx, wrong(code_sent_to(ctx.outbox, PHONE)), **language)


def sms_delivery_failed(ctx, **language):
    ctx.settings.SMS_BACKEND = "tests.sms_doubles.FailingBackend"
    return request_code(ctx, **language)


def account_disabled(ctx, **language):
    ctx.make_user(PHONE, is_active=False)
    request_code(ctx)
    return check(ctx, code_sent_to(ctx.outbox, PHONE), **language)


def invite_code_not_found_on_activation(ctx, **language):
    return activate(ctx.authed(), "ZZZZZZ", **language)


def invite_code_not_found_on_preview(ctx, **language):
    return ctx.api.get("/api/v1/invite-codes/ZZZZZZ/", **language)


def own_invite_code(ctx, **language):
    client = ctx.authed()
    return activate(client, code_of(client.user), **language)


def invite_code_already_activated(ctx, **language):
    client = ctx.authed()
    assert activate(client, code_of(ctx.make_user())).status_code == 200
    return activate(client, code_of(ctx.make_user()), **language)


def invite_cycle(ctx, **language):
    a, b, c = ctx.authed(), ctx.authed(), ctx.authed()
    assert activate(a, code_of(b.user)).status_code == 200
    assert activate(b, code_of(c.user)).status_code == 200
    return activate(c, code_of(a.user), **language)


def blacklisted_refresh_token(ctx, **language):
    refresh = ctx.sign_in(PHONE)["refresh"]
    assert ctx.api.post(LOGOUT_URL, {"refresh": refresh}, format="json").status_code == 204
    return ctx.api.post(REFRESH_URL, {"refresh": refresh}, format="json", **language)


def not_authenticated(ctx, **language):
    return ctx.api.get("/api/v1/me/", **language)


def resend_within_a_minute(ctx, **language):
    freeze_time(ctx)
    assert request_code(ctx).status_code == 200
    return request_code(ctx, **language)


def phone_hourly_limit(ctx, **language):
    freeze_time(ctx)
    ctx.settings.OTP_RESEND_SECONDS = 0
    for _ in range(ctx.settings.OTP_SENDS_PER_HOUR):
        assert request_code(ctx).status_code == 200
    return request_code(ctx, **language)


def global_hourly_budget(ctx, **language):
    freeze_time(ctx)
    ctx.settings.OTP_GLOBAL_SENDS_PER_HOUR = 0
    return request_code(ctx, **language)


def phone_locked(ctx, **language):
    freeze_time(ctx)
    CheckFailure.objects.bulk_create([CheckFailure(phone=PHONE, failed_at=FROZEN_NOW) for _ in range(10)])
    return check(ctx, "1234", **language)


@dataclass(frozen=True)
class Case:
    provoke: Callable
    status: int
    code: str
    en: str
    ru: str


CASES = [
    Case(
        code_expired,
        400,
        "code_expired",
        "The code has expired, was used up or was never sent. Request a new one.",
        "Срок действия кода истёк, код уже использован или не отправлялся. Запросите новый код.",
    ),
    Case(invalid_code, 400, "invalid_code", "The code is wrong.", "Неверный код."),
    Case(
        sms_delivery_failed,
        503,
        "sms_delivery_failed",
        "The SMS could not be sent. Please try again shortly.",
        "Не удалось отправить SMS. Попробуйте ещё раз чуть позже.",  # noqa: RUF001
    ),
    Case(account_disabled, 403, "account_disabled", "This account is disabled.", "Эта учётная запись отключена."),
    Case(
        invite_code_not_found_on_activation,
        400,
        "invite_code_not_found",
        "No user has this invite code.",
        "Такого кода приглашения нет ни у одного пользователя.",  # noqa: RUF001
    ),
    Case(
        invite_code_not_found_on_preview,
        404,
        "invite_code_not_found",
        "No user has this invite code.",
        "Такого кода приглашения нет ни у одного пользователя.",  # noqa: RUF001
    ),
    Case(
        own_invite_code,
        400,
        "own_invite_code",
        "You cannot activate your own invite code.",
        "Нельзя активировать собственный код приглашения.",
    ),
    Case(
        invite_code_already_activated,
        409,
        "invite_code_already_activated",
        "You have already activated an invite code.",
        "Вы уже активировали код приглашения.",
    ),
    Case(
        invite_cycle,
        400,
        "invite_cycle",
        "This code belongs to someone you invited, directly or through others.",
        "Этот код принадлежит тому, кого пригласили вы сами — напрямую или через других.",
    ),
    Case(blacklisted_refresh_token, 401, "token_not_valid", "Token is blacklisted", "Токен отозван"),
    Case(
        not_authenticated,
        401,
        "not_authenticated",
        "Authentication credentials were not provided.",
        "Учётные данные не предоставлены.",
    ),
    Case(
        resend_within_a_minute,
        429,
        "throttled",
        "A code was just sent to this phone. Try again in 1 minute.",
        "Код на этот номер только что отправлен. Повторите попытку через 1 минуту.",
    ),
    Case(
        phone_hourly_limit,
        429,
        "throttled",
        "Too many codes were sent to this phone. Try again in 60 minutes.",
        "На этот номер отправлено слишком много кодов. Повторите попытку через 60 минут.",  # noqa: RUF001
    ),
    Case(
        global_hourly_budget,
        429,
        "throttled",
        "Too many codes are being sent right now. Try again in 40 minutes.",
        "Сейчас отправляется слишком много кодов. Повторите попытку через 40 минут.",
    ),
    Case(
        phone_locked,
        429,
        "throttled",
        "Too many wrong codes for this phone. Try again in 24 hours.",
        "Слишком много неверных кодов для этого номера. Повторите попытку через 24 часа.",
    ),
]


@pytest.fixture
def ctx(api, authed, make_user, outbox, settings, sign_in, monkeypatch):
    return SimpleNamespace(**locals())  # the fixtures a case may need, by name


# Each language gets a fresh database: most of these errors change state (attempts, sends, activations) as they happen.
@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("case", [pytest.param(case, id=case.provoke.__name__) for case in CASES])
def test_error_detail_is_the_exact_sentence_of_the_language(ctx, case, language):
    response = case.provoke(ctx, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == case.status, response.content
    assert response.json()["code"] == case.code
    assert response.json()["detail"] == getattr(case, language)
