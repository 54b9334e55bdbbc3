from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class AuthIPThrottle(SimpleRateThrottle):
    """AUTH_IP_RATE per client IP and endpoint, counted in the shared cache (all workers)."""

    def get_rate(self):
        return settings.AUTH_IP_RATE  # read per request, so tests and operators can change it

    def get_cache_key(self, request, view):
        return f"throttle:auth:{view.throttle_scope}:{self.get_ident(request)}"
