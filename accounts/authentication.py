import time
from functools import lru_cache

from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch


class AccessTokenUser(TokenUser):
    """The user an access token names, without a database read: every API request carries one.

    Access tokens live JWT_ACCESS_MINUTES (15); refresh checks the account in the database, and
    so do the profile and activation, which read the user's row anyway.
    """

    @cached_property
    def id(self) -> int:
        return int(self.token[api_settings.USER_ID_CLAIM])


AUTH_SCHEMES = {scheme.lower().encode() for scheme in api_settings.AUTH_HEADER_TYPES}


class AccessTokenAuthentication(JWTStatelessUserAuthentication):
    """SimpleJWT's stateless check, verifying each token's signature once per worker process.

    A client sends the same access token with every call for its 15 minutes; decoding and
    verifying it each time cost nearly as much as the profile's query. Only tokens that passed
    are kept, keyed by their exact bytes, and their expiry is checked again on every use.
    """

    def __init__(self):
        # SimpleJWT's reads the user model, which only its database-backed check uses: DRF makes
        # an authenticator for every request.
        pass

    def get_raw_token(self, header: bytes) -> bytes | None:
        # The scheme is case-insensitive (RFC 9110); and a header that names it without exactly
        # one token is a bad token, under the contract's code rather than a code of SimpleJWT's own.
        parts = header.split()
        if not parts or parts[0].lower() not in AUTH_SCHEMES:
            return None
        if len(parts) != 2:
            raise InvalidToken(_("Authorization header must contain two space-delimited values"))
        return parts[1]

    def get_validated_token(self, raw_token: bytes) -> Token:
        token, usable_until = _verified_token(raw_token)
        if time.time() < usable_until:
            return token
        return super().get_validated_token(raw_token)  # expired since: SimpleJWT's own refusal


@lru_cache(maxsize=4096)
def _verified_token(raw_token: bytes) -> tuple[Token, float]:
    """The token, and the moment (POSIX seconds) its expiry check (Token.check_exp) starts refusing it.

    A refusal raises, and lru_cache keeps no exceptions: a bad token is checked in full each time.
    """
    token = JWTStatelessUserAuthentication().get_validated_token(raw_token)
    if not names_a_user_id(token.get(api_settings.USER_ID_CLAIM)):  # AccessTokenUser.id, read by every view
        raise InvalidToken(_("Token contained no recognizable user identification"))
    expires = datetime_from_epoch(token["exp"])  # check_exp's claim; verified to be there
    return token, (expires + token.get_token_backend().get_leeway()).timestamp()


def names_a_user_id(claim) -> bool:
    # A primary key as SimpleJWT writes it (a string of digits) or as a number; never True, 1.5 or
    # a number past the bigint a query would fail on.
    if isinstance(claim, str) and claim.isascii() and claim.isdigit():
        claim = int(claim)
    return type(claim) is int and 0 < claim < 2**63
