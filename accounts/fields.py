import unicodedata

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone
from project.text import is_invisible


class PhoneNumberField(serializers.CharField):
    """A phone as people write it in, E.164 out; `invalid_phone` otherwise."""

    default_error_messages = {"invalid_phone": _("Enter a valid phone number, e.g. +7 911 000-00-00.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        raw = super().to_internal_value(data)
        try:
            return parse_phone(raw)
        except InvalidPhoneNumber:
            self.fail("invalid_phone")


class OneTimeCodeField(serializers.CharField):
    """Exactly OTP_LENGTH ASCII digits; `invalid_code` otherwise (other scripts' digits too)."""

    default_error_messages = {"invalid_code": _("Enter the code from the SMS: 4 digits.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        code = super().to_internal_value(data)
        if len(code) != settings.OTP_LENGTH or not all(ch in "0123456789" for ch in code):
            self.fail("invalid_code")
        return code


# Control characters, and the line and paragraph separators (U+2028, U+2029): they break a list's rows.
LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
# Embeddings, overrides and isolates: inside a name they reorder what follows it on the screen where
# the inviter's list shows it (an override makes "evil" read "live").
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


INVALID_NAME = _("Names may not contain control characters or text-direction controls.")


class InvalidName(ValueError):
    pass


def person_name(name: str) -> str:
    """A name as the person gave it, without what would spoof how others see it; the API's and the admin's.

    Invisible format characters at either end (zero-width spaces, byte-order marks) go, as
    surrounding spaces do, so a name of nothing else is empty; inside they stay (emoji sequences
    and Persian names need the zero-width joiners). Control characters and text-direction
    controls are refused (InvalidName).
    """
    if any(unicodedata.category(ch) in LINE_BREAKING or ch in DIRECTION_CONTROLS for ch in name):
        raise InvalidName(name)
    while name and (is_invisible(name[0]) or name[0].isspace()):
        name = name[1:]
    while name and (is_invisible(name[-1]) or name[-1].isspace()):
        name = name[:-1]
    return name


class PersonNameField(serializers.CharField):
    """A name, read by person_name()."""

    default_error_messages = {"invalid_characters": INVALID_NAME}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return person_name(super().to_internal_value(data))
        except InvalidName:
            self.fail("invalid_characters")
