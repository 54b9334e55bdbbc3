from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Referral(models.Model):
    """A user's place in the invite forest: own code, who invited them, how many they invited."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="referral",
        verbose_name=_("user"),
    )
    invite_code = models.CharField(_("invite code"), max_length=6, unique=True)
    # SET_NULL keeps `activated_at`: an invitee whose inviter was deleted still used their one activation.
    invited_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitees",
        verbose_name=_("invited by"),
        db_index=False,  # referral_invitees_newest starts with invited_by and serves these lookups
    )
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    # Kept by the database's triggers (migrations 0003, 0008), so the profile never counts 100k rows.
    invitees_count = models.PositiveIntegerField(_("invitees"), default=0)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        indexes = [
            # Serves "newest invitees of X" for the profile and the cursor pages.
            models.Index(fields=["invited_by", "-activated_at", "-user"], name="referral_invitees_newest"),
        ]
        constraints = [
            # Lists and cursor pages order invitees by the moment: one without it cannot be placed.
            models.CheckConstraint(
                condition=models.Q(invited_by__isnull=True) | models.Q(activated_at__isnull=False),
                name="referral_invitee_has_activated_at",
            ),
        ]

    def __str__(self) -> str:
        return self.invite_code
