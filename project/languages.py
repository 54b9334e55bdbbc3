"""The language of a reply: from Accept-Language alone, as the API promises and as `Vary` says."""

import math
import re

from django.conf import settings
from django.middleware.locale import LocaleMiddleware

# RFC 4647's language range, as Django's own parser takes it: `en-US@euro` would void the whole header.
LANGUAGE_RANGE = re.compile(r"\*|[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")


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
        language, *parameters = item.split(";")
        language = language.strip().replace("_", "-")
        if not LANGUAGE_RANGE.fullmatch(language):
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(float(value), 1.0)
                except ValueError:
                    weight = math.nan
        if not weight > 0:  # q=0 says "not this one"; an unreadable q (NaN) says nothing
            continue
        items.append(f"{language};q={weight:.3f}")
    return ",".join(items)
