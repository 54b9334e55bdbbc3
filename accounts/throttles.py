from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class AuthIPThrottle(SimpleRateThrottle):
    """AUTH_IP_RATE per client IP and endpoint, counted in the shared cache (all workers)."""

    def get_rate(self):
        # Read per request, so tests and operators can change it; "off" lifts the limit (benchmarks).
        rate = settings.AUTH_IP_RATE
        return None if rate in ("", "off") else rate

    def get_cache_key(self, request, view):
        return f"throttle:auth:{view.throttle_scope}:{self.get_ident(request)}"
