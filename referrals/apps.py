from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Referrals"

    def ready(self):
        from project import prepared_statements  # noqa: F401  (connects the session setup of its statements)
        from referrals import checks, receivers  # noqa: F401  (register the system checks, connect the user-creation hook)
