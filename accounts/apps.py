from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from accounts import (
            checks,  # noqa: F401  (registers the system checks)
            token_signing,
        )
        from project import checks as project_checks  # noqa: F401  (the project is no app of its own)

        token_signing.register()
