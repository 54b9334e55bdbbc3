from django.conf import settings
from django.core.checks import Error, register

from referrals.selectors import invite_url


@register()
def invite_url_template_formats(app_configs, **kwargs):
    """A template with another placeholder fails at start-up, not as a 500 on every profile."""
    try:
        invite_url("ABCDEF")
    except (KeyError, IndexError, ValueError, AttributeError):
        return [
            Error(
                f"INVITE_URL_TEMPLATE={settings.INVITE_URL_TEMPLATE!r} may hold no placeholder but {{code}}.",
                id="referrals.E001",
            )
        ]
    return []
