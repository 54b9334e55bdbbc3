from django.utils.functional import cached_property
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings


class AccessTokenUser(TokenUser):
    """The user an access token names, without a database read: every API request carries one.

    Access tokens live JWT_ACCESS_MINUTES (15); refresh checks the account in the database, and
    so do the profile and activation, which read the user's row anyway.
    """

    @cached_property
    def id(self) -> int:
        return int(self.token[api_settings.USER_ID_CLAIM])
