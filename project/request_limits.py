from django.conf import settings
from django.utils.translation import gettext as _

from project.exception_handler import error_reply

# The methods whose bodies the API reads; a body sent with GET is never parsed.
METHODS_WITH_BODIES = frozenset({"POST", "PUT", "PATCH"})


class RequestBodyLimitMiddleware:
    """Refuse oversized API bodies by their declared length, before anything reads them, and bodies
    that declare none (chunked).

    DRF's JSON parser reads the request stream itself, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE (checked only by `request.body`) never applies to it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in METHODS_WITH_BODIES and request.path.startswith("/api/"):
            if not request.META.get("CONTENT_LENGTH") and request.META.get("HTTP_TRANSFER_ENCODING"):
                # Django reads a body by its Content-Length alone: a chunked one would pass as empty.
                return error_reply(
                    "length_required", _("Send the request body with a Content-Length header."), status=411
                )
            declared = request.META.get("CONTENT_LENGTH") or "0"
            if not declared.isascii() or not declared.isdigit():
                # Gunicorn refuses these itself; other servers may pass them on.
                return error_reply("bad_request", _("Bad request."), status=400)
            if int(declared) > settings.API_MAX_BODY_BYTES:
                return error_reply("request_too_large", _("The request body is too large."), status=413)
        return self.get_response(request)
