"""The OpenAPI description of the error envelope, attached to every operation where it applies.

Which errors an operation can return follows mostly from how its view is set up
(a request body, authentication, throttles); the rest a view names with
`@api_errors(...)` on its handler, as the exception classes it raises.
"""

from dataclasses import dataclass
from http import HTTPStatus

from django.conf import settings
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy
from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTStatelessUserScheme
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotAuthenticated, UnsupportedMediaType
from rest_framework.permissions import AllowAny

from project.exception_handler import CONTRACT_FIELD_CODES
from project.throttling import RequestsThrottled


class AccessTokenScheme(SimpleJWTStatelessUserScheme):
    """The Bearer scheme of SimpleJWT's stateless check, for its subclass that caches verified tokens."""

    target_class = "accounts.authentication.AccessTokenAuthentication"


class OneTimeCodeFieldSchema(OpenApiSerializerFieldExtension):
    """The code's rule in the schema, without validators on the field: DRF copies a serializer's fields
    on every request, and its to_internal_value refuses anything else first."""

    target_class = "accounts.fields.OneTimeCodeField"

    def map_serializer_field(self, auto_schema, direction):
        length = settings.OTP_LENGTH
        return {"type": "string", "maxLength": length, "pattern": f"^[0-9]{{{length}}}$"}


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case error code for programs; never translated.")
    detail = serializers.CharField(help_text="A sentence for people, in the language of Accept-Language (en, ru).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: field name (or non_field_errors) -> messages.",
    )


@dataclass(frozen=True)
class ErrorDoc:
    status: int
    code: str
    detail: str | Promise  # a lazy text is put in the language the schema is asked in (?lang=ru)
    errors: dict | None = None

    @classmethod
    def of(cls, exception: type[APIException]) -> "ErrorDoc":
        return cls(exception.status_code, exception.default_code, str(exception.default_detail))

    @property
    def form(self) -> tuple:
        """What a client tells replies apart by: status, code, and whether `errors` names the fields."""
        return self.status, self.code, self.errors is not None

    def example(self, *, shares_code: bool = False) -> OpenApiExample:
        value = {"code": self.code, "detail": str(self.detail)}
        name, summary = self.code, None
        if self.errors is not None:
            value["errors"] = {field: [str(message) for message in messages] for field, messages in self.errors.items()}
            if shares_code:
                # The field's code is also a domain error's, sent with `detail` alone (invalid_code: not 4 digits,
                # or wrong): under one name drf-spectacular would keep only the last of the two examples.
                fields = ", ".join(f"errors.{field}" for field in self.errors)
                name, summary = f"{self.code} field", f"{self.code} ({fields})"
        return OpenApiExample(name, value=value, summary=summary, response_only=True, status_codes=[str(self.status)])


def api_errors(*exceptions: type[APIException] | ErrorDoc):
    """Name the domain errors a view handler raises, for the schema (its code, status and text).

    An ErrorDoc stands for an exception whose default text the view never sends (SimpleJWT's
    InvalidToken is raised with a text of its own for each reason).
    """

    def mark(handler):
        handler.api_errors = exceptions
        return handler

    return mark


def _in_the_schemas_language(make) -> Promise:
    return lazy(make, str)()


INVALID = ErrorDoc(
    400, "invalid", gettext_lazy("Invalid input."), {"field": [serializers.Field.default_error_messages["required"]]}
)
PARSE_ERROR = ErrorDoc(400, "parse_error", gettext_lazy("The request body is not valid JSON."))
NOT_AUTHENTICATED = ErrorDoc(401, "not_authenticated", NotAuthenticated.default_detail)
TOKEN_NOT_VALID = ErrorDoc(401, "token_not_valid", gettext_lazy("Given token not valid for any token type"))
LENGTH_REQUIRED = ErrorDoc(411, "length_required", gettext_lazy("Send the request body with a Content-Length header."))
REQUEST_TOO_LARGE = ErrorDoc(413, "request_too_large", gettext_lazy("The request body is too large."))
UNSUPPORTED_MEDIA_TYPE = ErrorDoc(
    415, "unsupported_media_type", _in_the_schemas_language(lambda: str(UnsupportedMediaType("text/plain").detail))
)
THROTTLED = ErrorDoc(429, "throttled", _in_the_schemas_language(lambda: str(RequestsThrottled(wait=42).detail)))
# A refresh token already rotated or revoked: what a client retrying a refresh or a logout meets.
REFRESH_TOKEN_SPENT = ErrorDoc(401, "token_not_valid", gettext_lazy("Token is blacklisted"))
INVALID_CURSOR = ErrorDoc(404, "not_found", gettext_lazy("Invalid cursor"))
SERVICE_UNAVAILABLE = ErrorDoc(503, "service_unavailable", gettext_lazy("The service is temporarily unavailable."))

# Statuses whose replies carry Retry-After (seconds).
RETRY_AFTER_STATUSES = (429, 503)

STATUS_TITLES = {
    400: "The request was refused",
    401: "The token is missing or not valid",
    404: "Not found",
    409: "Conflicts with the current state",
    411: "The body came without a Content-Length (chunked)",
    413: "The request body is too large",
    415: "The body is not JSON",
    429: "Too many requests; retry after Retry-After seconds",
    503: "Temporarily unavailable; retry later",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema plus the error envelope replies and readable component names."""

    def get_serializer_name(self, serializer, direction):
        # Views nest their own InputSerializer/OutputSerializer: name them after the view
        # (RequestCodeView.InputSerializer -> RequestCodeRequest), or they would all collide.
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer.endswith("View") and inner in {"InputSerializer", "OutputSerializer"}:
            operation = outer.removesuffix("View")
            return operation if inner == "InputSerializer" else f"{operation}Response"
        return super().get_serializer_name(serializer, direction)

    def error_docs(self) -> list[ErrorDoc]:
        docs = []
        if self._has_request_body():
            docs.append(INVALID)
            docs += [
                ErrorDoc(400, code, INVALID.detail, {name: [message]})
                for name, code, message in self._contract_field_errors()
            ]
            docs += [PARSE_ERROR, LENGTH_REQUIRED, REQUEST_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE]
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            docs += [NOT_AUTHENTICATED, TOKEN_NOT_VALID]
        handler = getattr(self.view, self.method.lower(), None)
        docs += [
            error if isinstance(error, ErrorDoc) else ErrorDoc.of(error) for error in getattr(handler, "api_errors", ())
        ]
        if self.view.get_throttles():
            docs.append(THROTTLED)
        docs.append(SERVICE_UNAVAILABLE)
        # One example per form of a reply: a later doc of the same form (the view's own) replaces an earlier one.
        unique = {doc.form: doc for doc in docs}
        return sorted(unique.values(), key=lambda doc: doc.status)

    def _has_request_body(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH"} and self.get_request_serializer() is not None

    def _contract_field_errors(self):
        serializer = force_instance(self.get_request_serializer())
        # As the exception handler sends them: the field's code on top, its message under `errors`.
        for name, field in getattr(serializer, "fields", {}).items():
            for code, message in field.error_messages.items():
                if code in CONTRACT_FIELD_CODES:
                    yield name, code, str(message)

    def error_responses(self) -> dict[str, OpenApiResponse]:
        by_status: dict[int, list[ErrorDoc]] = {}
        for doc in self.error_docs():
            by_status.setdefault(doc.status, []).append(doc)
        responses = {}
        for status, docs in by_status.items():
            codes = [doc.code for doc in docs]
            responses[str(status)] = OpenApiResponse(
                ErrorSerializer,
                description=f"{self._title(status)}. Codes: {', '.join(f'`{code}`' for code in dict.fromkeys(codes))}.",
                examples=[doc.example(shares_code=codes.count(doc.code) > 1) for doc in docs],
            )
        return responses

    @staticmethod
    def _title(status: int) -> str:
        return STATUS_TITLES.get(status) or HTTPStatus(status).phrase

    # Below extend_schema(responses=...), which replaces get_response_serializers() wholesale,
    # so the error replies are added wherever a view's success reply comes from.
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status, response in self.error_responses().items():
            if status not in responses:
                responses[status] = self._get_response_for_code(response, status, direction=direction)
        return responses

    def get_override_parameters(self):
        statuses = {doc.status for doc in self.error_docs()} & set(RETRY_AFTER_STATUSES)
        retry_after = OpenApiParameter(
            "Retry-After",
            int,
            OpenApiParameter.HEADER,
            description="Seconds to wait before retrying.",
            response=sorted(statuses),
        )
        return [*super().get_override_parameters(), retry_after]

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            replies = dict.fromkeys((doc.code, doc.status) for doc in self.error_docs())
            codes = ", ".join(f"`{code}` ({status})" for code, status in replies)
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\nError codes: {codes}.".lstrip()
        return operation
