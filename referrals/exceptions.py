from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException, NotFound


class InviteCodeNotFound(APIException):
    status_code = 400
    default_detail = _("No user has this invite code.")
    default_code = "invite_code_not_found"


class InviteCodeUnknown(NotFound):
    """The public preview's 404 for the same condition."""

    default_detail = _("No user has this invite code.")
    default_code = "invite_code_not_found"


class OwnInviteCode(APIException):
    status_code = 400
    default_detail = _("You cannot activate your own invite code.")
    default_code = "own_invite_code"


class InviteCodeAlreadyActivated(APIException):
    status_code = 409
    default_detail = _("You have already activated an invite code.")
    default_code = "invite_code_already_activated"


class InviteCycle(APIException):
    status_code = 400
    default_detail = _("This code belongs to someone you invited, directly or through others.")
    default_code = "invite_cycle"


class ActivationContended(APIException):
    status_code = 409
    default_detail = _("Other invite codes are being activated in your invite tree right now; please retry.")
    default_code = "activation_conflict"
