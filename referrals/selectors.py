"""Reads of the referrals app; each owns its query shape."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from accounts.phone_numbers import mask_phone
from referrals.exceptions import InviteCodeUnknown
from referrals.invite_codes import looks_like_invite_code, normalize_invite_code
from referrals.models import Referral

PROFILE_INVITEES = 100


@dataclass(frozen=True)
class Profile:
    user: User
    invite_code: str
    invite_url: str | None
    activated_invite_code: str | None
    invited_by: str | None
    activated_at: datetime | None
    invitees: list[str]
    invitees_count: int

    # The accounts fields, flattened for the serializer.
    @property
    def id(self):
        return self.user.pk

    @property
    def phone(self):
        return self.user.phone

    @property
    def first_name(self):
        return self.user.first_name

    @property
    def last_name(self):
        return self.user.last_name

    @property
    def date_joined(self):
        return self.user.date_joined


def get_profile(*, user_id: int) -> Profile:
    """The user, inviter and counter in one query, the newest invitees in another: 2 at any size."""
    referral = Referral.objects.select_related("user", "invited_by__user").get(user_id=user_id)
    inviter = referral.invited_by
    newest = list(newest_invitees(inviter_id=user_id).values_list("user__phone", flat=True)[:PROFILE_INVITEES])
    return Profile(
        user=referral.user,
        invite_code=referral.invite_code,
        invite_url=invite_url(referral.invite_code),
        activated_invite_code=inviter.invite_code if inviter else None,
        invited_by=inviter.user.phone if inviter else None,
        activated_at=referral.activated_at,
        invitees=newest,
        invitees_count=referral.invitees_count,
    )


def newest_invitees(*, inviter_id: int) -> QuerySet[Referral]:
    """Invitees of one user, newest first: an index range scan on referral_invitees_newest."""
    return Referral.objects.filter(invited_by_id=inviter_id).order_by("-activated_at", "-user_id")


def invite_url(code: str) -> str | None:
    template = settings.INVITE_URL_TEMPLATE
    return template.format(code=code) if template else None


@dataclass(frozen=True)
class InvitePreview:
    invite_code: str
    inviter: str


def get_invite_preview(*, code: str) -> InvitePreview:
    """What a stranger may learn from a code: that it exists, and a masked phone."""
    code = normalize_invite_code(code)
    phone = None
    if looks_like_invite_code(code):
        phone = Referral.objects.filter(invite_code=code).values_list("user__phone", flat=True).first()
    if phone is None:
        raise InviteCodeUnknown()
    return InvitePreview(invite_code=code, inviter=mask_phone(phone))
