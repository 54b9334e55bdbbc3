from string import Formatter

from django.conf import settings
from django.core.checks import Error, register


@register()
def invite_url_template_formats(app_configs, **kwargs):
    """A template that would not give each user a link of their own fails at start-up: one with no
    `{code}` (every user would share one link, and referrals would go unattributed), or with another
    placeholder, a conversion or a format (a 500 on every profile, or a mangled code)."""
    template = settings.INVITE_URL_TEMPLATE
    if not template:
        return []
    try:
        fields = [
            (name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template) if name is not None
        ]
    except ValueError:
        fields = [None]
    if not fields or any(field != ("code", "", None) for field in fields):
        return [
            Error(
                f"INVITE_URL_TEMPLATE={template!r} must hold {{code}}, and no other placeholder.",
                id="referrals.E001",
            )
        ]
    return []
