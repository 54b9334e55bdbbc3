"""Sign-in by one-time code: issuing codes and checking them, with every limit of DESIGN.md."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled

from accounts import otp
from accounts.exceptions import AccountDisabled, CodeExpired, InvalidCode, PhoneRegionNotAllowed, SmsDeliveryFailed
from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge, User
from accounts.phone_numbers import may_receive_codes
from accounts.sms_backends import SmsDeliveryError, get_backend

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class CodeSent:
    phone: str
    code_length: int
    expires_in: int
    retry_after: int


def request_code(*, phone: str) -> CodeSent:
    """Send a fresh code to `phone` unless a limit says no; a failed send spends no limit."""
    sent = CodeSent(phone, settings.OTP_LENGTH, settings.OTP_TTL_SECONDS, settings.OTP_RESEND_SECONDS)
    if otp.fixed_code_for(phone) is not None:
        return sent
    if not may_receive_codes(phone):
        raise PhoneRegionNotAllowed()
    code = otp.generate_code()
    send = _reserve_send(phone=phone)
    with translation.override(settings.SMS_LANGUAGE):
        text = _("Your sign-in code: %(code)s") % {"code": code}
    try:
        get_backend().send(phone=phone, text=text)
    except SmsDeliveryError as exc:
        _release_send(send)
        raise SmsDeliveryFailed() from exc
    except BaseException:
        _release_send(send)  # a bug in a backend still must not cost the person their limits
        raise
    _install_code(phone=phone, code=code)
    return sent


@transaction.atomic
def _reserve_send(*, phone: str) -> CodeSend:
    """Count a send against every limit, or raise Throttled; committed before the SMS goes out."""
    now = timezone.now()
    _lock_challenge(phone)
    CodeSend.objects.filter(phone=phone, sent_at__lt=now - DAY).delete()
    recent = list(CodeSend.objects.filter(phone=phone).order_by("-sent_at").values_list("sent_at", flat=True))
    _refuse_over_limit(recent, now=now, window=timedelta(seconds=settings.OTP_RESEND_SECONDS), limit=1)
    _refuse_over_limit(recent, now=now, window=HOUR, limit=settings.OTP_SENDS_PER_HOUR)
    _refuse_over_limit(recent, now=now, window=DAY, limit=settings.OTP_SENDS_PER_DAY)
    hour = now.replace(minute=0, second=0, microsecond=0)
    HourlySendBudget.objects.bulk_create([HourlySendBudget(hour=hour)], ignore_conflicts=True)
    budget = HourlySendBudget.objects.filter(hour=hour, used__lt=settings.OTP_GLOBAL_SENDS_PER_HOUR)
    if not budget.update(used=F("used") + 1):
        raise Throttled(wait=_seconds_until(hour + HOUR, now=now))
    return CodeSend.objects.create(phone=phone, sent_at=now)


@transaction.atomic
def _release_send(send: CodeSend) -> None:
    hour = send.sent_at.replace(minute=0, second=0, microsecond=0)
    HourlySendBudget.objects.filter(hour=hour, used__gt=0).update(used=F("used") - 1)
    send.delete()


@transaction.atomic
def _install_code(*, phone: str, code: str) -> None:
    """The delivered code replaces the previous one, with a fresh life and attempt count."""
    challenge = _lock_challenge(phone)
    challenge.code_hash = otp.hash_code(phone=phone, code=code)
    challenge.expires_at = timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS)
    challenge.attempts = 0
    challenge.save(update_fields=["code_hash", "expires_at", "attempts"])


class Check(Enum):
    PASSED = "passed"
    WRONG = "wrong"
    DEAD = "dead"
    LOCKED = "locked"


@dataclass(frozen=True)
class CheckResult:
    outcome: Check
    retry_after: int | None = None
    user: User | None = None
    created: bool = False


def sign_in(*, phone: str, code: str) -> tuple[User, bool]:
    """The user behind `phone` if `code` is its live code, created on the first success."""
    result = _check_code(phone=phone, code=code, fixed=otp.fixed_code_for(phone))
    if result.outcome is Check.LOCKED:
        raise Throttled(wait=result.retry_after, detail=_("Too many wrong codes for this phone. Try again later."))
    if result.outcome is Check.DEAD:
        raise CodeExpired()
    if result.outcome is Check.WRONG:
        raise InvalidCode()
    user, created = result.user, result.created
    if not user.is_active:
        raise AccountDisabled()
    return user, created


@transaction.atomic
def _check_code(*, phone: str, code: str, fixed: str | None) -> CheckResult:
    """Spend the code on a match; record every refusal (it must commit, so nothing raises here).

    A test phone's `fixed` code never expires, but wrong guesses count and lock it all the same.
    """
    now = timezone.now()
    challenge = _lock_challenge(phone)
    CheckFailure.objects.filter(phone=phone, failed_at__lt=now - DAY).delete()
    failures = list(CheckFailure.objects.filter(phone=phone).order_by("-failed_at").values_list("failed_at", flat=True))
    if len(failures) >= settings.OTP_FAILURES_PER_DAY:
        oldest_counted = failures[settings.OTP_FAILURES_PER_DAY - 1]
        return CheckResult(Check.LOCKED, retry_after=_seconds_until(oldest_counted + DAY, now=now))
    if fixed is not None:
        if not constant_time_compare(code, fixed):
            CheckFailure.objects.create(phone=phone, failed_at=now)
            return CheckResult(Check.WRONG)
        user, created = User.objects.get_or_create(phone=phone)
        return CheckResult(Check.PASSED, user=user, created=created)
    alive = challenge.code_hash and challenge.expires_at > now and challenge.attempts < settings.OTP_MAX_ATTEMPTS
    if not alive:
        CheckFailure.objects.create(phone=phone, failed_at=now)
        return CheckResult(Check.DEAD)
    if not otp.code_matches(phone=phone, code=code, code_hash=challenge.code_hash):
        challenge.attempts += 1
        challenge.save(update_fields=["attempts"])
        CheckFailure.objects.create(phone=phone, failed_at=now)
        return CheckResult(Check.WRONG)
    challenge.code_hash, challenge.expires_at, challenge.attempts = "", None, 0
    challenge.save(update_fields=["code_hash", "expires_at", "attempts"])
    user, created = User.objects.get_or_create(phone=phone)
    return CheckResult(Check.PASSED, user=user, created=created)


def _lock_challenge(phone: str) -> PhoneChallenge:
    # Insert-if-missing first: SELECT ... FOR UPDATE cannot lock a row that does not exist yet.
    PhoneChallenge.objects.bulk_create([PhoneChallenge(phone=phone)], ignore_conflicts=True)
    return PhoneChallenge.objects.select_for_update().get(phone=phone)


def _refuse_over_limit(newest_first: list[datetime], *, now: datetime, window: timedelta, limit: int) -> None:
    in_window = [moment for moment in newest_first if moment > now - window]
    if len(in_window) >= limit:
        raise Throttled(wait=_seconds_until(in_window[limit - 1] + window, now=now))


def _seconds_until(moment: datetime, *, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def update_names(*, user_id: int, first_name: str | None = None, last_name: str | None = None) -> None:
    """Change the names a person gave; nothing else of the account is theirs to edit."""
    changed = {
        name: value for name, value in (("first_name", first_name), ("last_name", last_name)) if value is not None
    }
    if changed:
        User.objects.filter(pk=user_id, is_active=True).update(**changed)
