"""One error envelope for every non-2xx API reply: {"code", "detail", "errors"?}."""

import logging
import sys
from collections.abc import Mapping

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseServerError, JsonResponse
from django.template import loader
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import DataError, RedisError
from rest_framework.exceptions import ParseError, Throttled, ValidationError
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from project.throttling import RequestsThrottled

logger = logging.getLogger(__name__)

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY
SERVICE_RETRY_AFTER = "5"  # seconds: an outage of the database or of the SMS provider

# Field error codes that are part of the API contract; when the only failing field
# carries one of them it becomes the top-level code, so clients need not dig.
CONTRACT_FIELD_CODES = {"invalid_phone", "phone_region_not_allowed", "invalid_code", "invite_code_not_found"}


def validation_code(exc: ValidationError) -> str:
    detail = exc.detail
    if isinstance(detail, dict) and len(detail) == 1:
        (messages,) = detail.values()
        codes = {getattr(message, "code", None) for message in messages} if isinstance(messages, list) else set()
        if len(codes) == 1 and (code := codes.pop()) in CONTRACT_FIELD_CODES:
            return code
    return "invalid"


def error_reply(code: str, detail: str, *, status: int, fields: Mapping[str, object] | None = None) -> JsonResponse:
    """The envelope where DRF does not answer, written as DRF's renderer writes it: UTF-8, not \\u escapes.

    `fields`: a reply's own, beside the envelope's (the readiness probe's).
    """
    body = {**(fields or {}), "code": code, "detail": detail}
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


READ_ONLY_TRANSACTION = "25006"  # SQLSTATE: a standby after a failover, or a database its host made read-only


def is_outage(exc: BaseException) -> bool:
    """The database, or the Redis that holds the per-IP counters, is down, unreachable or refusing
    writes: a retryable condition, not a bug. Redis refuses them as a replica after a failover
    (READONLY) or at its memory limit (OOM), and its other errors are taken alike, but for the
    client's own refusal of a value it cannot send (DataError), which is a bug."""
    if isinstance(exc, RedisError):
        return not isinstance(exc, DataError)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "pgcode", None) == READ_ONLY_TRANSACTION


def envelope_exception_handler(exc, context):
    if is_outage(exc):
        logger.error("service unavailable: %s.%s: %s", type(exc).__module__, type(exc).__name__, exc)
        return unavailable_json()  # JSON on any DRF view, under /api/ or not
    if isinstance(exc, Throttled) and not isinstance(exc, RequestsThrottled):
        exc = RequestsThrottled(wait=exc.wait)  # the per-IP limits, DRF's throttle classes: the wait in words
    response = exception_handler(exc, context)  # also maps Http404 and PermissionDenied
    if response is None:
        return None  # a bug: let it 500 and reach the logs
    if response.status_code == 503:
        response.setdefault("Retry-After", SERVICE_RETRY_AFTER)  # the schema promises it on every 503
    if isinstance(exc, ParseError):
        # DRF's own text ("JSON parse error - ...") is not translatable and echoes parser internals.
        response.data = {"code": "parse_error", "detail": _("The request body is not valid JSON.")}
    elif isinstance(exc, ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {NON_FIELD: exc.detail}
        if list(errors) == [NON_FIELD] and not isinstance(getattr(context.get("request"), "data", {}), Mapping):
            # DRF's words: English for null, and half English otherwise ("Ожидался dictionary").
            errors = {NON_FIELD: [_("The request body must be a JSON object.")]}
        response.data = {"code": validation_code(exc), "detail": _("Invalid input."), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        # SimpleJWT puts its own "code" next to "detail"; DRF keeps it on the ErrorDetail.
        code = response.data.get("code") or getattr(detail, "code", "error")
        response.data = {"code": str(code), "detail": str(detail)}
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt  # no API client carries a CSRF cookie; without this an unknown POST got Django's HTML 403
def api_not_found(request, rest=""):
    """Any other path under /api/: JSON even with DEBUG on, and no slash-appending HTML redirect."""
    detail = _("Not found.")
    if not request.path.endswith("/") and _is_served(request.path_info + "/"):
        detail = _("Not found. API paths end with a slash: %(path)s") % {"path": request.path + "/"}
    return error_reply("not_found", detail, status=404)


def _is_served(path_info: str) -> bool:
    """Whether a view other than this catch-all answers `path_info`: the one a slash hint may point to."""
    try:
        match = resolve(path_info)  # the request's URLconf: Django's handler set it for this thread
    except Resolver404:
        return False
    return match.func is not api_not_found


def page_not_found(request, exception=None):
    if _is_api(request):
        return error_reply("not_found", _("Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    # Django calls this while it handles the exception, so it is still at hand. An outage that DRF's
    # handler does not see (a page outside the API, or middleware before DRF) is a 503 as the API's.
    if is_outage(sys.exc_info()[1]):
        return unavailable_reply(request)
    if _is_api(request):
        return error_reply("server_error", _("A server error occurred."), status=500)
    # As Django's page, but not through its CSRF wrapper, which reads the request's form: a form that
    # cannot be read (a Content-Length that is no number, where the server lets one through) raised
    # again in here, and the client got the server's bare error instead of this page.
    return HttpResponseServerError(loader.get_template(defaults.ERROR_500_TEMPLATE_NAME).render())


def unavailable_reply(request):
    """503 with Retry-After: JSON `service_unavailable` under /api/, else the 503 page."""
    if _is_api(request):
        return unavailable_json()
    # Rendered without the request's context, as Django's 500 page: its processors may read the database.
    return HttpResponse(
        loader.get_template("503.html").render(), status=503, headers={"Retry-After": SERVICE_RETRY_AFTER}
    )


def unavailable_json(fields: Mapping[str, object] | None = None) -> JsonResponse:
    message = _("The service is temporarily unavailable.")
    response = error_reply("service_unavailable", message, status=503, fields=fields)
    response["Retry-After"] = SERVICE_RETRY_AFTER
    return response


def bad_request(request, exception=None):
    if _is_api(request):
        return error_reply("bad_request", _("Bad request."), status=400)
    # Not Django's view: its CSRF wrapper reads the request's form, which may be anyone's of up to
    # 100,000 fields (the host is refused before they are counted) and fails past them with a 500.
    return HttpResponseBadRequest(loader.render_to_string(defaults.ERROR_400_TEMPLATE_NAME, request=request))
