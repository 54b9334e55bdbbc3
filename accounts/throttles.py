import ipaddress
import time

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.rate_limits import hit

DEFAULT_AUTH_IP_RATE = "30/minute"
# The periods DRF's rate syntax names; DRF itself reads only their first letter ("month" is a minute).
RATE_PERIODS = frozenset(
    {
        *("s", "sec", "secs", "second", "seconds"),
        *("m", "min", "mins", "minute", "minutes"),
        *("h", "hr", "hrs", "hour", "hours"),
        *("d", "day", "days"),
    }
)


class AuthIPThrottle(SimpleRateThrottle):
    """AUTH_IP_RATE per client IP and endpoint: an atomic counter shared by every worker."""

    def get_rate(self):
        # Read per request, so tests and operators can change it. Empty means the default;
        # only "off" lifts the limit (the benchmark does).
        rate = settings.AUTH_IP_RATE or DEFAULT_AUTH_IP_RATE
        return None if rate == "off" else rate

    def get_ident(self, request):
        ident = super().get_ident(request)
        try:
            address = ipaddress.ip_address(_without_port(ident))
            if address.version == 4:
                return str(address)
            if address.scope_id:
                raise ValueError(ident)  # "::1%anything": a new bucket for every suffix
            if address.ipv4_mapped:
                return str(address.ipv4_mapped)  # the IPv4 client's own bucket
            # A device picks any address of its /64 at will (privacy extensions): one bucket for
            # the network, written one way (IPv6 has many spellings).
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        except ValueError:
            # Not an address: a client past the proxy wrote its own X-Forwarded-For. It counts
            # against the peer that sent it rather than a bucket of its own choosing.
            return request.META.get("REMOTE_ADDR", "")

    def get_cache_key(self, request, view):
        return f"throttle:auth:{view.throttle_scope}:{self.get_ident(request)}"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        hits, self.window_ends = hit(self.get_cache_key(request, view), window=self.duration)
        return hits <= self.num_requests

    def wait(self):
        return max(1.0, self.window_ends - time.time())


def _without_port(ident: str) -> str:
    """The address of "203.0.113.7:5678" or "[2001:db8::1]:443", as some proxies write the client
    (Azure Application Gateway); anything else as it is."""
    if ident.startswith("["):
        address, bracket, port = ident[1:].partition("]")
        if bracket and (port == "" or (port[:1] == ":" and _is_port(port[1:]))):
            return address
        return ident
    address, colon, port = ident.partition(":")
    if colon and _is_port(port):  # IPv4 with a port; an IPv6 address has more colons than one
        return address
    return ident


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit() alone takes other scripts' digits too
