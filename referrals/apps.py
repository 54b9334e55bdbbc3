from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals")

    def ready(self):
        from project import prepared_statements  # noqa: F401  (connects the session setup of its statements)
        from referrals import checks, receivers  # noqa: F401  (register the system checks, connect the user-creation hook)
