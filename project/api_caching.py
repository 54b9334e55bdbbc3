"""API replies are never stored: they carry tokens, phones and profiles meant for one person."""

API_PREFIX = "/api/v1/"


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every reply under /api/v1/, errors included (RFC 6749 asks it of
    token replies; a browser's disk cache or a misconfigured proxy would otherwise keep them)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            response["Cache-Control"] = "no-store"  # whatever else was said: nothing here may be kept
        return response
