"""SMS delivery behind one small interface, picked by SMS_BACKEND like Django's EMAIL_BACKEND."""

import logging

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

BACKENDS = {
    "console": "accounts.sms_backends.ConsoleBackend",
    "memory": "accounts.sms_backends.MemoryBackend",
    "smsaero": "accounts.sms_providers.SmsAeroBackend",
    "exolve": "accounts.sms_providers.ExolveBackend",
}


class SmsDeliveryError(Exception):
    """The provider did not accept the message; its text never includes the code."""


class BaseBackend:
    def send(self, *, phone: str, text: str) -> None:
        """Deliver `text` to `phone` (E.164) within SMS_TIMEOUT, or raise SmsDeliveryError."""
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Development: the message goes to the log, one line each, code included."""

    def send(self, *, phone: str, text: str) -> None:
        logger.info("SMS to %s: %s", phone, text)


# Messages the memory backend "sent", for tests to read.
outbox: list[dict[str, str]] = []


class MemoryBackend(BaseBackend):
    def send(self, *, phone: str, text: str) -> None:
        outbox.append({"phone": phone, "text": text})


def backend_class() -> type[BaseBackend]:
    name = settings.SMS_BACKEND
    return import_string(BACKENDS.get(name, name))


def get_backend() -> BaseBackend:
    return backend_class()()
