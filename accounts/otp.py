"""One-time codes: generated from `secrets`, kept only as a keyed hash."""

import functools
import secrets
from contextlib import suppress

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone

HASH_SALT = "accounts.otp"


def generate_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(settings.OTP_LENGTH))


def hash_code(*, phone: str, code: str) -> str:
    # Keyed by the server secret and bound to the phone, so a leaked table row
    # neither reveals the code nor matches the same code sent to another phone.
    return salted_hmac(HASH_SALT, f"{phone}:{code}", algorithm="sha256").hexdigest()


def code_matches(*, phone: str, code: str, code_hash: str) -> bool:
    return constant_time_compare(hash_code(phone=phone, code=code), code_hash)


def fixed_code_for(phone: str) -> str | None:
    """The fixed code of a configured test phone (no SMS, no send limits), else None."""
    if not settings.OTP_TEST_PHONES:
        return None
    return _parsed_test_phones(tuple(settings.OTP_TEST_PHONES.items()), settings.PHONE_REGION).get(phone)


@functools.lru_cache(maxsize=8)
def _parsed_test_phones(pairs: tuple[tuple[str, str], ...], region: str) -> dict[str, str]:
    # Parsing every test phone took ~0.45 ms per sign-in request; the settings seldom change.
    # A malformed entry is skipped here (the accounts.E002 system check reports it at start-up).
    parsed = {}
    for raw, code in pairs:
        with suppress(InvalidPhoneNumber):
            parsed[parse_phone(raw, region=region)] = str(code)
    return parsed


def invalid_test_phones() -> list[str]:
    """Entries of OTP_TEST_PHONES whose phone does not parse or whose code is not OTP_LENGTH digits."""
    bad = []
    for raw, code in settings.OTP_TEST_PHONES.items():
        try:
            parse_phone(raw)
        except InvalidPhoneNumber:
            bad.append(raw)
            continue
        if len(str(code)) != settings.OTP_LENGTH or not str(code).isdigit():
            bad.append(raw)
    return bad
