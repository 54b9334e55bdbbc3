from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from rest_framework.exceptions import MethodNotAllowed

from project.exception_handler import error_reply, unavailable_json
from project.languages import AcceptLanguageMiddleware


@never_cache
def healthz(request):
    """The process is up and serving; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Ready for traffic: the database answers a query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        # The probe's own fields, for orchestrators, in the envelope every error body has.
        return unavailable_json({"status": "unavailable", "database": "unreachable"})
    return JsonResponse({"status": "ok", "database": "ok"})


class HealthProbeMiddleware:
    """Answer the probes before anything reads the Host header.

    Orchestrators and load balancers probe a target by its address (Kubernetes' httpGet sends the
    pod's IP), which ALLOWED_HOSTS does not name; Django would answer them 400, and the target would
    never count as healthy. First in MIDDLEWARE: the probes also skip the HTTPS redirect. Other
    methods are refused here too: past this point the CSRF check would refuse them with its page.
    Their error replies are in the language Accept-Language asks for, as the API's are: the
    language middleware runs later, and until it does a thread keeps its last request's language.
    """

    PROBES = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response
        self.language = AcceptLanguageMiddleware(get_response)

    def __call__(self, request):
        probe = self.PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        self.language.process_request(request)
        if request.method in ("GET", "HEAD"):
            response = probe(request)
        else:
            response = error_reply("method_not_allowed", str(MethodNotAllowed(request.method).detail), status=405)
            response["Allow"] = "GET, HEAD"
            add_never_cache_headers(response)
        return self.language.process_response(request, response)
