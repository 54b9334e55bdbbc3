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
        header = request.META.get("HTTP_ACCEPT_LANGUAGE")
        if header:
            request.META["HTTP_ACCEPT_LANGUAGE"] = readable_accept_language(header)
        cookies = request.COOKIES
        if settings.LANGUAGE_COOKIE_NAME not in cookies:
            return super().process_request(request)
        request.COOKIES = {name: value for name, value in cookies.items() if name != settings.LANGUAGE_COOKIE_NAME}
        try:
            return super().process_request(request)
        finally:
            request.COOKIES = cookies


def readable_accept_language(header: str) -> str:
    """The header as Django reads it, from what clients send.

    Django drops the whole header over one item it cannot read: `ru_RU` (Java's Locale.toString(),
    common on Android), a q-value that is not a number or above 1. And it takes `ru;q=0`, which
    says "not Russian", as a Russian speaker. Here such an item is mended or left out, the rest kept.
    """
    items = []
    for item in header.split(","):
        language, _, parameters = item.partition(";")
        language = language.strip().replace("_", "-")
        if not language:
            continue
        weight = 1.0
        name, _, value = parameters.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = min(float(value), 1.0)
            except ValueError:
                continue
            if not weight > 0:  # q=0 says "not this one"; NaN says nothing
                continue
        items.append(f"{language};q={weight:.3f}")
    return ",".join(items)
