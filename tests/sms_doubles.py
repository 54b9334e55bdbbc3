"""SMS backends for tests, chosen through the SMS_BACKEND setting like any other."""

import io
import threading

from django.core.management import call_command
from django.db import connections

from accounts.sms_backends import BaseBackend, MemoryBackend, SmsDeliveryError


class FailingBackend(BaseBackend):
    def send(self, *, phone: str, text: str) -> None:
        raise SmsDeliveryError("provider refused")


class CrashingBackend(BaseBackend):
    def send(self, *, phone: str, text: str) -> None:
        raise RuntimeError("a bug in a backend")


class PurgingBackend(MemoryBackend):
    """Delivers, but only after `manage.py purge_expired` has run on a connection of its own: the
    purge then falls between a code request's recorded send and the install of its code."""

    def send(self, *, phone: str, text: str) -> None:
        purge = threading.Thread(target=_purge_on_its_own_connection)
        purge.start()
        purge.join()
        super().send(phone=phone, text=text)


def _purge_on_its_own_connection() -> None:
    try:
        call_command("purge_expired", stdout=io.StringIO())
    finally:
        connections.close_all()
