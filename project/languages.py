"""The language of a reply: from Accept-Language alone, as the API promises and as `Vary` says."""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware


class AcceptLanguageMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware without its cookie.

    Django lets a `django_language` cookie outrank Accept-Language. Nothing here sets one, but
    another Django site on the same domain may, and a cache keyed on Accept-Language (what `Vary`
    names) would then hand one language's reply to clients asking for the other.
    """

    def process_request(self, request):
        cookies = request.COOKIES
        if settings.LANGUAGE_COOKIE_NAME not in cookies:
            return super().process_request(request)
        request.COOKIES = {name: value for name, value in cookies.items() if name != settings.LANGUAGE_COOKIE_NAME}
        try:
            return super().process_request(request)
        finally:
            request.COOKIES = cookies
