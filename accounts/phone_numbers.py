"""Phone numbers in, E.164 out: the one place that knows how people write them."""

import re
import unicodedata

import phonenumbers
from django.conf import settings

from project.text import without_invisible

# Digits (any script: phonenumbers folds them to ASCII), spaces and the usual punctuation.
# phonenumbers itself ignores trailing junk such as "x" or letters, which we refuse.
WRITTEN_FORM = re.compile(r"^[\d\s+\-().]{1,32}$")
SPACE = re.compile(r"\s")


class InvalidPhoneNumber(ValueError):
    pass


def parse_phone(raw: str, *, region: str | None = None) -> str:
    """The E.164 form of a phone number as people write it, or InvalidPhoneNumber."""
    raw = _without_typography(raw)
    if not WRITTEN_FORM.match(raw):
        raise InvalidPhoneNumber(raw)
    try:
        # phonenumbers skips some spaces (no-break, ideographic) but not others (thin, figure).
        number = phonenumbers.parse(SPACE.sub(" ", raw), region or settings.PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# CJK input methods type the ASCII signs in their full-width forms (U+FF01-U+FF5E): a plus, brackets, dots.
FULL_WIDTH_TO_ASCII = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}


def _without_typography(raw: str) -> str:
    # A number copied from a contacts app or a web page brings invisible format characters
    # (direction marks, zero-width spaces) and typographic dashes (U+2010-U+2015) along.
    ascii_signs = without_invisible(raw).translate(FULL_WIDTH_TO_ASCII)
    return "".join("-" if unicodedata.category(ch) == "Pd" else ch for ch in ascii_signs)


def region_of(phone: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(phone))


def may_receive_codes(phone: str) -> bool:
    allowed = settings.SMS_ALLOWED_REGIONS
    return not allowed or region_of(phone) in allowed


# Numbers whose texts the sender pays extra for or that reach no person's handset: where SMS
# pumping sends its traffic, and no one signs in from them.
NO_SMS_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOICEMAIL,
        phonenumbers.PhoneNumberType.PAGER,
    }
)


def may_receive_sms(phone: str) -> bool:
    return phonenumbers.number_type(phonenumbers.parse(phone)) not in NO_SMS_TYPES


def mask_phone(phone: str) -> str:
    """`+79110000000` -> `+7 911 ***-**-00`: enough to recognise, too little to call.

    At least half of the national digits are hidden, so short numbers stay masked too.
    """
    number = phonenumbers.parse(phone)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country_digits = len(str(number.country_code))
    national_digits = sum(ch.isdigit() for ch in formatted) - country_digits
    keep_tail = 2
    hidden = max(national_digits - 3 - keep_tail, (national_digits + 1) // 2)
    keep_head = max(0, national_digits - hidden - keep_tail)
    masked, seen = [], 0
    for ch in formatted:
        if ch.isdigit():
            position = seen - country_digits
            seen += 1
            if keep_head <= position < keep_head + hidden:
                ch = "*"
        masked.append(ch)
    return "".join(masked)
