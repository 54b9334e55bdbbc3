"""Delete the rows that no longer count: run it daily (README, "Maintenance").

A phone's old sends and refused checks are cleared when it asks again; those of phones that never
come back, the hourly budgets of past hours and expired refresh tokens would otherwise stay for good.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.models import CheckFailure, CodeSend, HourlySendBudget
from accounts.services import DAY


class Command(BaseCommand):
    help = "Delete code sends, refused checks and hourly budgets older than a day, and expired refresh tokens."

    def handle(self, *args, **options):
        # The limits count the last 24 hours; the moment is taken once, so nothing still counted goes.
        since = timezone.now() - DAY
        sends = deleted(CodeSend.objects.filter(sent_at__lt=since))
        refusals = deleted(CheckFailure.objects.filter(failed_at__lt=since))
        budgets = deleted(HourlySendBudget.objects.filter(hour__lt=since))
        tokens = OutstandingToken.objects.filter(expires_at__lte=aware_utcnow()).count()
        call_command("flushexpiredtokens")  # SimpleJWT's own, with their revocations
        self.stdout.write(
            f"Deleted {sends} code send(s), {refusals} refused check(s), {budgets} hourly budget(s) "
            f"and {tokens} expired refresh token(s)."
        )


def deleted(rows: QuerySet) -> int:
    """Delete `rows`: how many of the queryset's own model went."""
    return rows.delete()[1].get(rows.model._meta.label, 0)
