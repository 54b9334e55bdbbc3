"""Referrals reacts to user creation and deletion; `accounts` never calls into it."""

from django.conf import settings
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from referrals.models import Referral
from referrals.services import create_referral


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="referrals.give_invite_code")
def give_invite_code(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        create_referral(user=instance)


@receiver(post_delete, sender=Referral, dispatch_uid="referrals.uncount_invitee")
def uncount_invitee(sender, instance, **kwargs):
    if instance.invited_by_id is not None:
        Referral.objects.filter(pk=instance.invited_by_id, invitees_count__gt=0).update(
            invitees_count=F("invitees_count") - 1
        )
