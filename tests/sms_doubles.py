"""SMS backends for tests, chosen through the SMS_BACKEND setting like any other."""

from accounts.sms_backends import BaseBackend, SmsDeliveryError


class FailingBackend(BaseBackend):
    def send(self, *, phone: str, text: str) -> None:
        raise SmsDeliveryError("provider refused")


class CrashingBackend(BaseBackend):
    def send(self, *, phone: str, text: str) -> None:
        raise RuntimeError("a bug in a backend")
