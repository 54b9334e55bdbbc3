"""Referrals reacts to user creation and deletion; `accounts` never calls into it."""

from django.conf import settings
from django.db.models import F
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from referrals.models import Referral
from referrals.services import create_referral


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="referrals.give_invite_code")
def give_invite_code(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        create_referral(user=instance)


@receiver(pre_delete, sender=Referral, dispatch_uid="referrals.reread_deleted_referral")
def reread_deleted_referral(sender, instance, **kwargs):
    # The deletion read this row before deleting it, and an activation holding the row's lock
    # may have committed since: lock it and count from the row as it is now (None if a
    # concurrent deletion got there first, which has uncounted it already).
    instance.invited_by_id = (
        Referral.objects.select_for_update().filter(pk=instance.pk).values_list("invited_by_id", flat=True).first()
    )


@receiver(post_delete, sender=Referral, dispatch_uid="referrals.uncount_invitee")
def uncount_invitee(sender, instance, **kwargs):
    if instance.invited_by_id is not None:
        Referral.objects.filter(pk=instance.invited_by_id, invitees_count__gt=0).update(
            invitees_count=F("invitees_count") - 1
        )
