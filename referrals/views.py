from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountDisabled
from accounts.fields import PersonNameField
from accounts.services import update_names
from accounts.throttles import AuthIPThrottle
from project import schema_examples
from project.schema import INVALID_CURSOR, api_errors
from project.serializers import FlatSerializer
from referrals.exceptions import (
    ActivationContended,
    InviteCodeAlreadyActivated,
    InviteCodeNotFound,
    InviteCodeUnknown,
    InviteCycle,
    OwnInviteCode,
)
from referrals.pagination import NewestFirstCursor
from referrals.selectors import get_invite_preview, get_profile_reply, invitee_rows
from referrals.serializers import ProfileSerializer
from referrals.services import activate_invite_code


class ProfileView(APIView):
    class InputSerializer(FlatSerializer):
        first_name = PersonNameField(required=False)
        last_name = PersonNameField(required=False)

    @extend_schema(
        responses=ProfileSerializer,
        tags=["profile"],
        summary="My profile",
        description="The signed-in user: own invite code, the code they activated, and who activated theirs.",
        examples=schema_examples.PROFILE_REPLY,
    )
    @api_errors(AccountDisabled)
    def get(self, request):
        return Response(get_profile_reply(user_id=request.user.pk))

    @extend_schema(
        request=InputSerializer,
        responses=ProfileSerializer,
        tags=["profile"],
        summary="Change my names",
        description="Sets `first_name` and/or `last_name`; fields left out stay as they are.",
        examples=schema_examples.UPDATE_NAMES,
    )
    @api_errors(AccountDisabled)
    def patch(self, request):
        payload = self.InputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        update_names(user_id=request.user.pk, **payload.validated_data)
        return Response(get_profile_reply(user_id=request.user.pk))


class ActivateInviteCodeView(APIView):
    # Until a code takes, an unknown one answers 400: limited as the public lookup is, or an
    # account could try codes a few milliseconds apiece.
    throttle_classes = [AuthIPThrottle]
    throttle_scope = "invite_activation"

    class InputSerializer(FlatSerializer):
        # Any length: a code pasted with junk around it is a code nobody has, as any other (the body limit bounds it).
        invite_code = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses=ProfileSerializer,
        tags=["profile"],
        summary="Activate someone's invite code",
        description=(
            "Once per user, ever: sending the same code again returns the profile (a safe retry), another code "
            "is `invite_code_already_activated`. Not one's own code, and never a code that would close a loop "
            "of invitations (`invite_cycle`). The code is case-insensitive and trimmed."
        ),
        examples=schema_examples.ACTIVATE_INVITE_CODE,
    )
    @api_errors(
        InviteCodeNotFound, OwnInviteCode, InviteCycle, InviteCodeAlreadyActivated, ActivationContended, AccountDisabled
    )
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        activate_invite_code(user=request.user, code=payload.validated_data["invite_code"])
        return Response(get_profile_reply(user_id=request.user.pk))


class ListInviteesView(ListAPIView):
    pagination_class = NewestFirstCursor

    class OutputSerializer(FlatSerializer):
        phone = serializers.CharField()
        first_name = serializers.CharField()
        last_name = serializers.CharField()
        activated_at = serializers.DateTimeField()

    serializer_class = OutputSerializer  # describes the rows; get() sends them as the query shaped them

    def get_queryset(self):
        return invitee_rows(inviter_id=self.request.user.pk)

    @extend_schema(
        tags=["profile"],
        summary="People who activated my code",
        description="Newest first, paged by an opaque cursor (follow `next`); `page_size` up to 100.",
        examples=schema_examples.INVITEES,
    )
    @api_errors(INVALID_CURSOR)
    def get(self, request, *args, **kwargs):
        # The rows already have the output's shape and JSON types; running 50 of them through
        # the serializer would cost more than the query (see docs/benchmarks.md).
        return self.get_paginated_response(self.paginate_queryset(self.get_queryset()))


class PreviewInviteCodeView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthIPThrottle]
    throttle_scope = "invite_preview"

    class OutputSerializer(FlatSerializer):
        invite_code = serializers.CharField()
        inviter = serializers.CharField(help_text="The inviter's phone, masked: +7 911 ***-**-00.")

    @extend_schema(
        responses=OutputSerializer,
        tags=["invite codes"],
        summary="Look up an invite code",
        description="Public: whether a code exists, with its owner's phone masked. Case-insensitive.",
        parameters=[schema_examples.INVITE_CODE_PARAMETER],
        examples=schema_examples.PREVIEW_INVITE_CODE,
    )
    @api_errors(InviteCodeUnknown)
    def get(self, request, code):
        return Response(self.OutputSerializer(get_invite_preview(code=code)).data)
