"""Delete the rows that no longer count: run it daily (README, "Maintenance").

A phone's old sends and refused checks are cleared when it asks again; those of phones that never
come back, the hourly budgets of past hours, the rows of phones with no live code (every guess for
a phone with no row adds one) and expired refresh tokens would otherwise stay for good.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.models import CheckFailure, CodeSend, HourlySendBudget, PhoneChallenge
from accounts.services import DAY

BATCH = 5_000


class Command(BaseCommand):
    help = (
        "Delete code sends, refused checks and hourly budgets older than a day, the rows of phones "
        "without a live code, and expired refresh tokens."
    )

    def handle(self, *args, **options):
        # The limits count the last 24 hours; the moment is taken once, so nothing still counted goes.
        now = timezone.now()
        since = now - DAY
        sends = delete_in_batches(CodeSend.objects.filter(sent_at__lt=since))
        refusals = delete_in_batches(CheckFailure.objects.filter(failed_at__lt=since))
        budgets = delete_in_batches(HourlySendBudget.objects.filter(hour__lt=since))
        # Phones with no code (never sent, or spent), one killed by its wrong guesses, or one that
        # expired a day ago (not now: the web servers' clocks that set it may be behind this one's).
        # The limits live in the sends and refusals above; a code request installs its code with an
        # upsert, so a row that goes while its SMS is on the way comes back with the code.
        dead = Q(code_hash="") | Q(attempts__gte=settings.OTP_MAX_ATTEMPTS) | Q(expires_at__lte=since)
        phones = delete_in_batches(PhoneChallenge.objects.filter(dead))
        tokens = OutstandingToken.objects.filter(expires_at__lte=aware_utcnow()).count()
        call_command("flushexpiredtokens")  # SimpleJWT's own, with their revocations
        self.stdout.write(
            f"Deleted {sends} code send(s), {refusals} refused check(s), {budgets} hourly budget(s), "
            f"{phones} phone(s) without a live code and {tokens} expired refresh token(s)."
        )


def delete_in_batches(rows: QuerySet) -> int:
    """Delete `rows`, a batch to a transaction, passing over those a request holds locked: a request
    about one of them waits for one batch at most, not for the whole purge. How many went."""
    total = 0
    while True:
        with transaction.atomic():
            batch = list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True)[:BATCH])
            gone = rows.model.objects.filter(pk__in=batch).delete()[1].get(rows.model._meta.label, 0)
        total += gone
        if len(batch) < BATCH or not gone:
            return total
