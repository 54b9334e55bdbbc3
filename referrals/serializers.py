from rest_framework import serializers


class ProfileSerializer(serializers.Serializer):
    """A person's own account, invite code, inviter and invitees."""

    # Also the `user` of sign-in replies, through settings.ACCOUNTS_PROFILE_SERIALIZER.

    id = serializers.IntegerField()
    phone = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    date_joined = serializers.DateTimeField()
    invite_code = serializers.CharField(help_text="Own invite code, 6 characters.")
    invite_url = serializers.CharField(allow_null=True, help_text="Share link from INVITE_URL_TEMPLATE, or null.")
    activated_invite_code = serializers.CharField(allow_null=True)
    invited_by = serializers.CharField(allow_null=True, help_text="Phone of the inviter, or null.")
    activated_at = serializers.DateTimeField(allow_null=True)
    invitees = serializers.ListField(child=serializers.CharField(), help_text="The 100 newest invitees' phones.")
    invitees_count = serializers.IntegerField()
