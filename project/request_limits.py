from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _


class RequestBodyLimitMiddleware:
    """Refuse oversized API bodies by their declared length, before anything reads them.

    DRF's JSON parser reads the request stream itself, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE (checked only by `request.body`) never applies to it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > settings.API_MAX_BODY_BYTES:
                return JsonResponse(
                    {"code": "request_too_large", "detail": _("The request body is too large.")},
                    status=413,
                )
        return self.get_response(request)
