from contextlib import suppress

from django.contrib.auth.backends import ModelBackend

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone


class PhoneBackend(ModelBackend):
    """Password sign-in (the admin) by a phone written any usual way: `8 911 ...` finds `+7911...`."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username:
            with suppress(InvalidPhoneNumber):  # as typed otherwise; it will simply not match
                username = parse_phone(str(username))
        return super().authenticate(request, username=username, password=password, **kwargs)
