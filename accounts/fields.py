from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone


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
