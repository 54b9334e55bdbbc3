"""JWT pairs with SimpleJWT: issue, rotate (each refresh token works once), revoke."""

from django.db import connection, transaction
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import BlacklistMixin, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.authentication import names_a_user_id
from accounts.models import User
from accounts.row_locks import lock_user_row
from project.prepared_statements import run_prepared

_outstanding = OutstandingToken._meta
OUTSTANDING_TOKEN_SQL = (
    f"INSERT INTO {_outstanding.db_table} (user_id, jti, token, created_at, expires_at) "  # noqa: S608 - model names
    "VALUES ($1, $2, $3, $4, $5) RETURNING id"
)


def issue_tokens(*, user: User) -> dict[str, str]:
    """A new pair, its refresh token recorded as outstanding (SimpleJWT's blacklist) to be rotated or revoked.

    SimpleJWT's RefreshToken.for_user records it through the ORM and signs the refresh token
    twice (once for the record, once for the reply): a seventh of a sign-in's CPU. Here the claims
    are still SimpleJWT's own (Token.for_user, which BlacklistMixin.for_user wraps), signed once,
    and the record is the same row but for the token's text.
    """
    refresh = super(BlacklistMixin, RefreshToken).for_user(user)
    _record_outstanding(refresh, user=user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _record_outstanding(refresh: RefreshToken, *, user: User) -> None:
    """The record without the token's text (SimpleJWT keeps it): nothing reads it, and whoever read it
    in a dump, a backup or a replica could use every live session. The id (jti) is what the blacklist uses."""
    jti, expires_at = refresh[api_settings.JTI_CLAIM], datetime_from_epoch(refresh["exp"])
    created_at = refresh.current_time
    if connection.vendor == "postgresql":
        params = [user.pk, jti, "", created_at, expires_at]
        run_prepared("accounts_outstanding_token", OUTSTANDING_TOKEN_SQL, params)
    else:
        OutstandingToken.objects.create(user=user, jti=jti, token="", created_at=created_at, expires_at=expires_at)


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


class _CheckedRefreshToken(RefreshToken):
    """SimpleJWT's, refusing an id its blacklist check cannot look up: that check reads the id before
    verify() asks whether there is one (a KeyError), and PostgreSQL refuses text holding NUL or a
    lone surrogate. SimpleJWT's ids are hex."""

    def check_blacklist(self) -> None:
        jti = self.payload.get(api_settings.JTI_CLAIM)
        if not isinstance(jti, str) or not jti.isascii() or "\x00" in jti:
            raise TokenError(_("Token has no id"))
        super().check_blacklist()


def _lock_live_refresh_token(token: str) -> OutstandingToken:
    try:
        refresh = _CheckedRefreshToken(token)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    _lock_user(refresh.get(api_settings.USER_ID_CLAIM))
    # The row lock makes "not yet blacklisted, so blacklist it" one step: of two
    # concurrent uses of one refresh token, the second waits and then sees the first's.
    outstanding = OutstandingToken.objects.select_for_update().filter(jti=refresh[api_settings.JTI_CLAIM]).first()
    if outstanding is not None and outstanding.user_id is None:  # the user was deleted
        raise InvalidToken(_("No active account found for the given token."))
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken(_("Token is blacklisted"))
    return outstanding


def _lock_user(user_id) -> None:
    """The token's user under the lock its new record's key takes at the commit anyway (FOR KEY SHARE),
    taken before the record's: an admin's deletion locks the user first, then the records, so
    a refresh that locked its record first and the user at its commit could deadlock with it."""
    if names_a_user_id(user_id):  # else the record, read next, names the user or no one
        lock_user_row(int(user_id), mode="KEY SHARE")
