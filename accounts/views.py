from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import exceptions
from accounts.fields import OneTimeCodeField, PhoneNumberField
from accounts.profile import profile_serializer_class
from accounts.services import request_code, sign_in
from accounts.throttles import AuthIPThrottle
from accounts.tokens import revoke_refresh_token, rotate_refresh_token
from project import schema_examples
from project.schema import REFRESH_TOKEN_SPENT, AutoSchema, api_errors
from project.serializers import FlatSerializer


class PublicAuthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthIPThrottle]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # a bad token is 401 here too, as everywhere else


class RequestCodeView(PublicAuthView):
    throttle_scope = "code"

    class InputSerializer(FlatSerializer):
        phone = PhoneNumberField()

    class OutputSerializer(FlatSerializer):
        phone = serializers.CharField()
        code_length = serializers.IntegerField()
        expires_in = serializers.IntegerField(help_text="Seconds the code stays valid.")
        retry_after = serializers.IntegerField(help_text="Seconds before another code may be requested.")

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        tags=["auth"],
        summary="Send a sign-in code by SMS",
        description=(
            "Step 1 of signing in. Sends a one-time code to the phone (written in any usual form; the reply "
            "gives it in E.164). A new code replaces the previous one. No account is created yet."
        ),
        examples=schema_examples.REQUEST_CODE,
    )
    @api_errors(exceptions.PhoneRegionNotAllowed, exceptions.PhoneCannotReceiveSms, exceptions.SmsDeliveryFailed)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        sent = request_code(phone=payload.validated_data["phone"])
        return Response(self.OutputSerializer(sent).data)


class SignInSchema(AutoSchema):
    # The profile serializer is named in settings, so the reply is described at schema time.
    def get_response_serializers(self):
        return inline_serializer(
            "SignIn",
            {
                "access": serializers.CharField(),
                "refresh": serializers.CharField(),
                "created": serializers.BooleanField(help_text="True when this sign-in created the account."),
                "user": profile_serializer_class()(),
            },
        )


class ObtainTokenView(PublicAuthView):
    throttle_scope = "token"

    class InputSerializer(FlatSerializer):
        phone = PhoneNumberField()
        code = OneTimeCodeField()

    schema = SignInSchema()

    @extend_schema(
        request=InputSerializer,
        tags=["auth"],
        summary="Exchange the code for tokens",
        description=(
            "Step 2 of signing in. Checks the code sent to the phone and returns a JWT pair and the profile; "
            "the first successful sign-in creates the account (`created: true`)."
        ),
        examples=schema_examples.OBTAIN_TOKEN,
    )
    @api_errors(exceptions.InvalidCode, exceptions.CodeExpired, exceptions.AccountDisabled)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        signed_in = sign_in(**payload.validated_data)
        return Response({**signed_in.tokens, "created": signed_in.created, "user": signed_in.profile})


class RefreshTokenView(PublicAuthView):
    throttle_scope = "refresh"

    class InputSerializer(FlatSerializer):
        refresh = serializers.CharField(max_length=4096)

    class OutputSerializer(FlatSerializer):
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        tags=["auth"],
        summary="Refresh the token pair",
        description=(
            "Returns a new access and refresh token; the refresh token sent stops working (rotation). "
            "Of two refreshes of one token at once, one gets the pair and the other 401 `token_not_valid`: "
            "run one refresh at a time and share its result."
        ),
        examples=schema_examples.REFRESH_TOKEN,
    )
    @api_errors(REFRESH_TOKEN_SPENT)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return Response(self.OutputSerializer(rotate_refresh_token(token=payload.validated_data["refresh"])).data)


class LogoutView(PublicAuthView):
    throttle_scope = "logout"

    class InputSerializer(FlatSerializer):
        refresh = serializers.CharField(max_length=4096)

    @extend_schema(
        request=InputSerializer,
        responses={204: None},
        tags=["auth"],
        summary="Sign out",
        description=(
            "Revokes the refresh token; access tokens already issued expire on their own. A token already "
            "spent or revoked is 401 `token_not_valid`: a client retrying a logout may take that as done."
        ),
        examples=schema_examples.LOGOUT,
    )
    @api_errors(REFRESH_TOKEN_SPENT)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        revoke_refresh_token(token=payload.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)
