"""Send one SMS through the configured backend, for operators checking provider credentials."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone
from accounts.sms_backends import SmsDeliveryError, get_backend


class Command(BaseCommand):
    help = "Send a test SMS through SMS_BACKEND; exits non-zero with the provider's reason when it fails."

    def add_arguments(self, parser):
        parser.add_argument("phone", help="Recipient, e.g. +79110000000 (any usual written form).")
        parser.add_argument("--text", default="Test message: SMS delivery works.", help="The message to send.")

    def handle(self, *args, phone: str, text: str, **options):
        try:
            e164 = parse_phone(phone)
        except InvalidPhoneNumber as exc:
            raise CommandError(f"{phone!r} is not a valid phone number.") from exc
        backend = settings.SMS_BACKEND
        try:
            get_backend().send(phone=e164, text=text)
        except SmsDeliveryError as exc:
            raise CommandError(f"Sending through {backend} failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Sent a test SMS to {e164} through {backend}."))
