"""The demo page at /: plain HTML and JavaScript that drive the public API, for trying it in a browser."""

from django.views.generic import TemplateView

from accounts.sms_backends import ConsoleBackend, backend_class

# The page keeps tokens in sessionStorage: scripts, styles and requests come from this server alone, so
# an injected script or a page framing it could not reach them.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class DemoPageView(TemplateView):
    template_name = "demo.html"

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    def get_context_data(self, **kwargs):
        # Only the console backend writes codes to the log, so only then may the page say where they are.
        return {**super().get_context_data(**kwargs), "codes_in_log": issubclass(backend_class(), ConsoleBackend)}
