"""Referrals reacts to user creation; `accounts` never calls into it.

Deletions are uncounted by the database itself (migration 0003), from the row as it is deleted.
"""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from referrals.services import create_referral


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="referrals.give_invite_code")
def give_invite_code(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        create_referral(user=instance)
