"""Permanent redirects keep the request's method: the HTTP-to-HTTPS one above all."""


class PermanentRedirectKeepsMethodMiddleware:
    """A 301 to a request with a body (SECURE_SSL_REDIRECT's for plain HTTP, say) becomes a 308.

    HTTP clients follow a 301 with a GET and drop the body, so a sign-in sent to an http:// base URL
    came back as a puzzling 405; a 308 is followed with the same method and body. Above Django's
    SecurityMiddleware, which stays in MIDDLEWARE for `check --deploy` to find.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 301 and request.method not in ("GET", "HEAD"):
            response.status_code = 308
        return response
