"""The demo page at /: plain HTML and JavaScript that drive the public API, for trying it in a browser."""

from django.views.generic import TemplateView

from accounts.sms_backends import ConsoleBackend, backend_class


class DemoPageView(TemplateView):
    template_name = "demo.html"

    def get_context_data(self, **kwargs):
        # Only the console backend writes codes to the log, so only then may the page say where they are.
        return {**super().get_context_data(**kwargs), "codes_in_log": issubclass(backend_class(), ConsoleBackend)}
