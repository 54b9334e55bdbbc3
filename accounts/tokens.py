"""JWT pairs with SimpleJWT: issue, rotate (each refresh token works once), revoke."""

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def issue_tokens(*, user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


@transaction.atomic
def rotate_refresh_token(*, token: str) -> dict[str, str]:
    """A new pair for a live refresh token, which stops working: at most once, even when raced."""
    outstanding = _lock_live_refresh_token(token)
    user = User.objects.filter(pk=outstanding.user_id, is_active=True).first()
    if user is None:
        raise InvalidToken(_("No active account found for the given token."))
    BlacklistedToken.objects.create(token=outstanding)
    return issue_tokens(user=user)


@transaction.atomic
def revoke_refresh_token(*, token: str) -> None:
    outstanding = _lock_live_refresh_token(token)
    BlacklistedToken.objects.create(token=outstanding)


def _lock_live_refresh_token(token: str) -> OutstandingToken:
    try:
        refresh = RefreshToken(token)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    # The row lock makes "not yet blacklisted, so blacklist it" one step: of two
    # concurrent uses of one refresh token, the second waits and then sees the first's.
    outstanding = (
        OutstandingToken.objects.select_for_update()
        .filter(jti=refresh[api_settings.JTI_CLAIM], user__isnull=False)
        .first()
    )
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken(_("Token is blacklisted"))
    return outstanding
