"""The profile that sign-in replies carry, as named in settings.

`accounts` knows only its own fields; another app (referrals) widens the profile by naming
in ACCOUNTS_PROFILE_SELECTOR a function that returns the reply's object, and in
ACCOUNTS_PROFILE_SERIALIZER the serializer that documents it.
"""

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework import serializers

from accounts.models import User


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    date_joined = serializers.DateTimeField()


def get_account(*, user_id: int) -> dict:
    return AccountSerializer(User.objects.get(pk=user_id)).data


def profile_serializer_class() -> type[serializers.Serializer]:
    return import_string(getattr(settings, "ACCOUNTS_PROFILE_SERIALIZER", "accounts.profile.AccountSerializer"))


def profile_data(*, user: User) -> dict:
    selector = import_string(getattr(settings, "ACCOUNTS_PROFILE_SELECTOR", "accounts.profile.get_account"))
    return selector(user_id=user.pk)
