"""Django's createsuperuser, taking the phone in any written form, as the admin's forms and login do."""

import os

from django.contrib.auth.management.commands import createsuperuser
from django.core.exceptions import ValidationError
from django.core.management import CommandError
from django.utils.translation import gettext as _

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone


class Command(createsuperuser.Command):
    # Django checks what was typed against the stored field (E.164, at most 16 characters) before the
    # manager would parse it: "+7 (911) 000-00-00" failed as too long. So it is parsed first.

    def handle(self, *args, **options):
        field = self.UserModel.USERNAME_FIELD
        if options[field] is None and not options["interactive"]:
            options[field] = os.environ.get(f"DJANGO_SUPERUSER_{field.upper()}")
        if options[field]:
            try:
                options[field] = parse_phone(options[field])
            except InvalidPhoneNumber:
                raise CommandError(_("Enter a valid phone number.")) from None
        return super().handle(*args, **options)

    def get_input_data(self, field, message, default=None):
        if field is not self.username_field:
            return super().get_input_data(field, message, default)
        raw_value = input(message) or default or ""
        try:
            return field.clean(parse_phone(raw_value), None)
        except InvalidPhoneNumber:
            self.stderr.write(f"Error: {_('Enter a valid phone number.')}")
        except ValidationError as exc:
            self.stderr.write(f"Error: {'; '.join(exc.messages)}")
        return None
