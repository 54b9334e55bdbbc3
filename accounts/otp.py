"""One-time codes: generated from `secrets`, kept only as a keyed hash."""

import secrets

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.phone_numbers import parse_phone

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
    fixed = {parse_phone(raw): str(code) for raw, code in settings.OTP_TEST_PHONES.items()}
    return fixed.get(phone)
