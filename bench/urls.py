"""The application's URLs plus a bare Django JSON view, the framework's ceiling.

Only the benchmark serves these (ROOT_URLCONF=bench.urls); production keeps project.urls.
"""

from django.http import JsonResponse
from django.urls import include, path

from project.urls import handler400, handler404, handler500  # noqa: F401  (a root URLconf must name them)


def ceiling(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("bench/ceiling/", ceiling, name="bench_ceiling"),
    path("", include("project.urls")),
]
