"""The application's URLs plus two reference views for the benchmark.

The ceiling is a bare Django view returning a small JSON object. The floor is the least an
authenticated API endpoint can do here: a DRF view with the project's authentication, one
`SELECT 1` round trip and a small reply. Only the benchmark serves these (ROOT_URLCONF=bench.urls);
production keeps project.urls.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from project.urls import handler400, handler404, handler500  # noqa: F401  (a root URLconf must name them)


def ceiling(request):
    return JsonResponse({"status": "ok"})


class FloorView(APIView):
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return Response({"status": "ok"})


urlpatterns = [
    path("bench/ceiling/", ceiling, name="bench_ceiling"),
    path("bench/floor/", FloorView.as_view(), name="bench_floor"),
    path("", include("project.urls")),
]
