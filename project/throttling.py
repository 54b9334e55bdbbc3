"""429 replies that say why and how long to wait, in words a person reads, in their language.

DRF's `Throttled` gives the wait in bare seconds ("86400 seconds"), and formats the number into its
message before translating it, so no catalogue can give the Russian plural forms.
"""

import math

from django.utils.translation import gettext, gettext_lazy, ngettext
from rest_framework.exceptions import APIException, Throttled


def wait_in_words(seconds: int) -> str:
    """Rounded up, never sooner than the truth: seconds under a minute, minutes under two hours, else hours."""
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    if seconds < 2 * 3600:
        minutes = math.ceil(seconds / 60)
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = math.ceil(seconds / 3600)
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


class RequestsThrottled(Throttled):
    """A 429 `throttled`: the reason, then the wait in words; `wait` (whole seconds) is the Retry-After."""

    default_reason = gettext_lazy("Too many requests.")

    def __init__(self, wait: float | None = None, reason: str | None = None):
        self.wait = None if wait is None else max(1, math.ceil(wait))
        detail = str(reason or self.default_reason)
        if self.wait is not None:
            try_again = gettext("Try again in %(wait)s.") % {"wait": wait_in_words(self.wait)}
            detail = f"{detail} {try_again}"
        APIException.__init__(self, detail, self.default_code)
