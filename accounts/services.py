"""Sign-in by one-time code: issuing codes and checking them, with every limit of DESIGN.md."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from accounts import otp, statements
from accounts.exceptions import (
    AccountDisabled,
    CodeExpired,
    CodeSentRecently,
    InvalidCode,
    PhoneCannotReceiveSms,
    PhoneLocked,
    PhoneRegionNotAllowed,
    PhoneSendLimitReached,
    SendBudgetExhausted,
    SmsDeliveryFailed,
)
from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge, User
from accounts.phone_numbers import may_receive_codes, may_receive_sms
from accounts.profile import profile_data
from accounts.sms_backends import SmsDeliveryError, get_backend
from accounts.tokens import issue_tokens
from project.prepared_statements import (
    batched_transaction,
    batches_round_trips,
    commit_before_next_statement,
    fetch_prepared,
    run_prepared,
)
from project.throttling import RequestsThrottled

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
    if otp.fixed_code_for(phone) is not None:
        return CodeSent(phone, settings.OTP_LENGTH, settings.OTP_TTL_SECONDS, settings.OTP_RESEND_SECONDS)
    if not may_receive_codes(phone):
        raise PhoneRegionNotAllowed()
    if not may_receive_sms(phone):
        raise PhoneCannotReceiveSms()
    code = otp.generate_code()
    send, retry_after = _reserve_send(phone=phone)
    with translation.override(settings.SMS_LANGUAGE):
        text = _("Your sign-in code: %(code)s") % {"code": code}
    try:
        get_backend().send(phone=phone, text=text)
    except SmsDeliveryError as exc:
        _after_the_send(lambda: _release_send(send))
        raise SmsDeliveryFailed() from exc
    except BaseException:
        _after_the_send(lambda: _release_send(send))  # a bug in a backend still must not cost the person their limits
        raise
    _after_the_send(lambda: _install_code(phone=phone, code=code))
    return CodeSent(phone, settings.OTP_LENGTH, settings.OTP_TTL_SECONDS, retry_after)


@batched_transaction()
def _reserve_send(*, phone: str) -> tuple[CodeSend, int]:
    """Count a send against every limit, or refuse it (429); committed before the SMS goes out.

    Also the seconds until the phone may ask again, as its limits will then see it.
    """
    now = timezone.now()
    _lock_phone(phone)
    recent, refusals = _recent_sends_and_refusals_clearing_old(phone, now=now)
    # The clock was read before the lock was granted: a send that the lock's holder recorded in the
    # meantime can be newer, and a wait counted from the earlier reading would be too long.
    now = max([now, *recent[:1]])
    if refusals >= settings.OTP_FAILURES_PER_DAY:
        raise PhoneLocked(wait=_seconds_until_unlocked(phone, now=now))  # a code it could not use: no SMS sent
    _refuse_over_limits(recent, now=now)
    hour = now.replace(minute=0, second=0, microsecond=0)
    send = _record_send_within_budget(phone, now=now, hour=hour)
    if send is None:
        raise SendBudgetExhausted(wait=_seconds_until(hour + HOUR, now=now))
    return send, _seconds_until_next_send([now, *recent], now=now)


def _send_limits() -> list[tuple[timedelta, int, type[RequestsThrottled]]]:
    """Each window of a phone's sends, how many it may hold, and the refusal when it is full."""
    return [
        (timedelta(seconds=settings.OTP_RESEND_SECONDS), 1, CodeSentRecently),
        (HOUR, settings.OTP_SENDS_PER_HOUR, PhoneSendLimitReached),
        (DAY, settings.OTP_SENDS_PER_DAY, PhoneSendLimitReached),
    ]


def _seconds_until_next_send(newest_first: list[datetime], *, now: datetime) -> int:
    # A window full to its limit lets the next send in once the oldest send it counts leaves it.
    free_at = [newest_first[limit - 1] + window for window, limit, _ in _send_limits() if len(newest_first) >= limit]
    return max(0, math.ceil((max(free_at, default=now) - now).total_seconds()))


def _recent_sends_and_refusals_clearing_old(phone: str, *, now: datetime) -> tuple[list[datetime], int]:
    """The phone's sends of the last day, newest first, and its refused checks of the last day; older
    sends and refusals no longer count and go."""
    if connection.vendor == "postgresql":
        rows = fetch_prepared("accounts_recent_sends", statements.RECENT_SENDS_SQL, [phone, now - DAY], many=True)
        return [sent_at for sent_at, _refusals in rows if sent_at is not None], rows[0][1]
    sent = list(CodeSend.objects.filter(phone=phone).order_by("-sent_at").values_list("sent_at", flat=True))
    recent = [moment for moment in sent if moment >= now - DAY]
    if len(recent) < len(sent):  # only when there are any: most requests have none to clear
        CodeSend.objects.filter(phone=phone, sent_at__lt=now - DAY).delete()
    _clear_old_refusals(phone, now=now)
    return recent, CheckFailure.objects.filter(phone=phone, failed_at__gte=now - DAY).count()


def _record_send_within_budget(phone: str, *, now: datetime, hour: datetime) -> CodeSend | None:
    """The send, recorded if the hour's budget had room for it (taken then); else None.

    The hour's first send creates its row (PostgreSQL: in the same statement).
    """
    if connection.vendor == "postgresql":
        params = [hour, settings.OTP_GLOBAL_SENDS_PER_HOUR, phone, now]
        row = fetch_prepared("accounts_record_send", statements.RECORD_SEND_SQL, params, many=False)
        if row is None:
            return None
        return CodeSend.from_db(DEFAULT_DB_ALIAS, ["id", "phone", "sent_at"], [row[0], phone, now])
    if not _take_from_budget(hour):
        # The hour's row is missing (its first send) or its budget is spent: create it if missing, try again.
        HourlySendBudget.objects.bulk_create([HourlySendBudget(hour=hour)], ignore_conflicts=True)
        if not _take_from_budget(hour):
            return None
    return CodeSend.objects.create(phone=phone, sent_at=now)


def _take_from_budget(hour: datetime) -> bool:
    within = HourlySendBudget.objects.filter(hour=hour, used__lt=settings.OTP_GLOBAL_SENDS_PER_HOUR)
    return within.update(used=F("used") + 1) > 0


def _after_the_send(write: Callable[[], None]) -> None:
    """A write once the provider has answered, which may take SMS_TIMEOUT: long enough for a database
    restart or failover to drop the connection. Then one new connection and a second try (each such
    write may be taken again), so that a delivered code works and a failed send spends no limit."""
    try:
        write()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()
        write()


@transaction.atomic
def _release_send(send: CodeSend) -> None:
    # The budget is given back only with the send's row, so taking this again never gives back twice.
    if CodeSend.objects.filter(pk=send.pk).delete()[0]:
        hour = send.sent_at.replace(minute=0, second=0, microsecond=0)
        HourlySendBudget.objects.filter(hour=hour, used__gt=0).update(used=F("used") - 1)


def _install_code(*, phone: str, code: str) -> None:
    """The delivered code replaces the previous one, with a fresh life and attempt count.

    One statement, which takes the row's lock itself, so it waits for a check of this phone in
    progress as a SELECT ... FOR UPDATE first would. It inserts the row when there is none:
    _reserve_send made it, but manage.py purge_expired deletes the rows of phones without a live
    code, and may do so while the SMS is on its way.
    """
    code_hash = otp.hash_code(phone=phone, code=code)
    expires_at = timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS)
    if connection.vendor == "postgresql":
        fetch_prepared("accounts_install_code", statements.INSTALL_CODE_SQL, [phone, code_hash, expires_at], many=False)
    else:
        PhoneChallenge.objects.update_or_create(
            phone=phone, defaults={"code_hash": code_hash, "expires_at": expires_at, "attempts": 0}
        )


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
    tokens: dict[str, str] | None = None
    profile: dict | None = None


@dataclass(frozen=True)
class SignedIn:
    user: User
    created: bool
    tokens: dict[str, str]
    profile: dict


def sign_in(*, phone: str, code: str) -> SignedIn:
    """A JWT pair for the user behind `phone` if `code` is its live code; the first success creates the user."""
    result = _check_code(phone=phone, code=code, fixed=otp.fixed_code_for(phone))
    if result.outcome is Check.LOCKED:
        raise PhoneLocked(wait=result.retry_after)
    if result.outcome is Check.DEAD:
        raise CodeExpired()
    if result.outcome is Check.WRONG:
        raise InvalidCode()
    if not result.user.is_active:
        raise AccountDisabled()  # the code is spent all the same, and no tokens were issued
    return SignedIn(user=result.user, created=result.created, tokens=result.tokens, profile=result.profile)


class _AccountNeeded(Exception):
    """The code passed for a phone without an account: the check is taken again, able to create one."""


def _check_code(*, phone: str, code: str, fixed: str | None) -> CheckResult:
    """Spend the code on a match; record every wrong guess of a live code (it must commit, so nothing raises here).

    A test phone's `fixed` code never expires, but wrong guesses count and lock it all the same.
    Creating the account takes the ORM's own transaction (get_or_create, the referral's post_save),
    which a batched transaction cannot hold; so where it batches round trips, a check that finds no
    account is undone and taken again in transaction.atomic(): a phone's first sign-in (or one that
    raced it, and read before the account was there). Between the two the phone's lock is let go,
    so the second check may see what others did meanwhile (a new code, more refusals) and decide
    accordingly, as if it had come after them.
    """
    try:
        with batched_transaction():
            return _check(phone=phone, code=code, fixed=fixed, may_create_account=not batches_round_trips())
    except _AccountNeeded:
        with transaction.atomic():
            return _check(phone=phone, code=code, fixed=fixed, may_create_account=True)


def _check(*, phone: str, code: str, fixed: str | None, may_create_account: bool) -> CheckResult:
    now = timezone.now()
    challenge, user, failures = _lock_and_read(phone, failures_since=now - DAY)
    if failures >= settings.OTP_FAILURES_PER_DAY:
        return CheckResult(Check.LOCKED, retry_after=_seconds_until_unlocked(phone, now=now))
    if fixed is not None:
        if not constant_time_compare(code, fixed):
            return _refuse(phone, Check.WRONG, now=now)
        return _pass(phone, user, may_create_account=may_create_account)
    alive = challenge.code_hash and challenge.expires_at > now and challenge.attempts < settings.OTP_MAX_ATTEMPTS
    if not alive:
        # No live code: never sent, expired, spent by a sign-in, or killed by its 5 wrong guesses (which
        # counted). No guess could open anything here, so nothing counts: counting these let anyone keep
        # a phone locked without sending an SMS, and a client retrying a sign-in lock out its own user.
        return CheckResult(Check.DEAD)
    if not otp.code_matches(phone=phone, code=code, code_hash=challenge.code_hash):
        challenge.attempts += 1
        _save_challenge(challenge)
        return _refuse(phone, Check.WRONG, now=now)
    challenge.code_hash, challenge.expires_at, challenge.attempts = "", None, 0
    _save_challenge(challenge)
    return _pass(phone, user, may_create_account=may_create_account)


def _save_challenge(challenge: PhoneChallenge) -> None:
    """The code's state after a check: spent, or one more wrong attempt (the row is locked)."""
    if connection.vendor == "postgresql":
        params = [challenge.pk, challenge.code_hash, challenge.expires_at, challenge.attempts]
        run_prepared("accounts_save_challenge", statements.SAVE_CHALLENGE_SQL, params)
    else:
        challenge.save(update_fields=["code_hash", "expires_at", "attempts"])


def _lock_phone(phone: str) -> None:
    """Lock the phone's row, inserting it first if it has none: one request about a phone at a time."""
    if connection.vendor == "postgresql":
        run_prepared("accounts_lock_phone", statements.LOCK_PHONE_SQL, [phone])
    else:
        _locked_challenge(phone)


def _locked_challenge(phone: str) -> PhoneChallenge:
    # Statement by statement, for databases without accounts_lock_phone().
    challenge = _select_for_update(phone)
    if challenge is None:
        PhoneChallenge.objects.bulk_create([PhoneChallenge(phone=phone)], ignore_conflicts=True)
        challenge = _select_for_update(phone)
    return challenge


def _lock_and_read(phone: str, *, failures_since: datetime) -> tuple[PhoneChallenge, User | None, int]:
    """The phone's row, locked; then its user, if any, and its refused checks since `failures_since`.

    After the lock, so that the count sees every refusal committed by those who held it before.
    """
    if connection.vendor != "postgresql":
        challenge = _locked_challenge(phone)
        return challenge, *_user_and_recent_failures(phone, since=failures_since)
    row = fetch_prepared(
        "accounts_lock_and_read_phone", statements.LOCK_AND_READ_PHONE_SQL, [phone, failures_since], many=False
    )
    challenge = PhoneChallenge.from_db(DEFAULT_DB_ALIAS, statements.CHALLENGE_FIELDS, [row[0], phone, *row[1:4]])
    # The user is read by the statement's own snapshot, which may predate the lock: a user that
    # the lock's previous holder created is missing here, and the check taken again then finds it.
    user = None if row[5] is None else User.from_db(DEFAULT_DB_ALIAS, statements.USER_FIELDS, row[5:])
    return challenge, user, row[4]


def _select_for_update(phone: str) -> PhoneChallenge | None:
    # Hand-written for the same reason as USER_AND_RECENT_FAILURES_SQL; SQLite has no row locks
    # (its transactions take the whole database's write lock up front instead).
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT * FROM accounts_phonechallenge WHERE phone = %s{lock}"  # noqa: S608 - no input in it
    return next(iter(PhoneChallenge.objects.raw(sql, [phone])), None)


# Hand-written: the ORM took longer to build this statement (a counting subquery) than to run it.
USER_AND_RECENT_FAILURES_SQL = """
SELECT u.*, (SELECT COUNT(*) FROM accounts_checkfailure f WHERE f.phone = %s AND f.failed_at >= %s) AS recent_failures
FROM accounts_user u WHERE u.phone = %s
"""


def _user_and_recent_failures(phone: str, *, since: datetime) -> tuple[User | None, int]:
    """The phone's user, if any, and its refused checks since `since`: one statement when the user exists."""
    params = [phone, connection.ops.adapt_datetimefield_value(since), phone]  # as the ORM would pass it
    user = next(iter(User.objects.raw(USER_AND_RECENT_FAILURES_SQL, params)), None)
    if user is None:
        return None, CheckFailure.objects.filter(phone=phone, failed_at__gte=since).count()
    return user, user.recent_failures


def _seconds_until_unlocked(phone: str, *, now: datetime) -> int:
    """A locked phone opens when the oldest of its newest OTP_FAILURES_PER_DAY refusals is a day old."""
    newest = CheckFailure.objects.filter(phone=phone).order_by("-failed_at").values_list("failed_at", flat=True)
    counted = list(newest[: settings.OTP_FAILURES_PER_DAY])
    if len(counted) < settings.OTP_FAILURES_PER_DAY:
        return 1  # deleted since they were counted (the admin lifts locks without the phone's lock): open now
    return _seconds_until(counted[-1] + DAY, now=now)


def _refuse(phone: str, outcome: Check, *, now: datetime) -> CheckResult:
    if connection.vendor == "postgresql":
        run_prepared("accounts_refuse", statements.REFUSE_SQL, [phone, now - DAY, now])
    else:
        _clear_old_refusals(phone, now=now)
        CheckFailure.objects.create(phone=phone, failed_at=now)
    return CheckResult(outcome)


def _clear_old_refusals(phone: str, *, now: datetime) -> None:
    # Refusals older than a day no longer count (sign-in counts the day's): cleared whenever the
    # phone asks for a code or is refused again, so no phone keeps them for long.
    CheckFailure.objects.filter(phone=phone, failed_at__lt=now - DAY).delete()


def _pass(phone: str, user: User | None, *, may_create_account: bool) -> CheckResult:
    created = False
    if user is None:
        if not may_create_account:
            raise _AccountNeeded()
        user, created = User.objects.get_or_create(phone=phone)
    if not user.is_active:
        return CheckResult(Check.PASSED, user=user, created=created)
    # In the check's transaction: one commit for the spent code and the refresh token's record.
    tokens = issue_tokens(user=user)
    # The reply's profile is read after the commit, in the same round trip.
    commit_before_next_statement()
    return CheckResult(Check.PASSED, user=user, created=created, tokens=tokens, profile=profile_data(user=user))


def _refuse_over_limits(newest_first: list[datetime], *, now: datetime) -> None:
    # Of the full windows, the one that opens last: a send right after the hour's last one would
    # otherwise be told to wait the minute between two codes, and then be refused for the hour.
    refusals = []
    for window, limit, refusal in _send_limits():
        in_window = [moment for moment in newest_first if moment > now - window]
        if len(in_window) >= limit:
            refusals.append(refusal(wait=_seconds_until(in_window[limit - 1] + window, now=now)))
    if refusals:
        raise max(refusals, key=lambda refused: refused.wait)


def _seconds_until(moment: datetime, *, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def update_names(*, user_id: int, first_name: str | None = None, last_name: str | None = None) -> None:
    """Change the names a person gave; nothing else of the account is theirs to edit."""
    changed = {
        name: value for name, value in (("first_name", first_name), ("last_name", last_name)) if value is not None
    }
    if changed:
        User.objects.filter(pk=user_id, is_active=True).update(**changed)
