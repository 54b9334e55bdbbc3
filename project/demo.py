"""The demo page at /: plain HTML and JavaScript that drive the public API, for trying it in a browser."""

from django.conf import settings
from django.views.generic import TemplateView


class DemoPageView(TemplateView):
    template_name = "demo.html"

    def get_context_data(self, **kwargs):
        # Only a development server logs codes (console SMS backend), so only then may the page say so.
        return {**super().get_context_data(**kwargs), "debug": settings.DEBUG}
