from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from project import exception_handler
from project.demo import DemoPageView

handler400 = "project.exception_handler.bad_request"
handler404 = "project.exception_handler.page_not_found"
handler500 = "project.exception_handler.server_error"

urlpatterns = [
    path("api/v1/auth/", include("accounts.urls")),
    path("api/v1/", include("referrals.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^api/(?P<rest>.*)$", exception_handler.api_not_found),
    path("admin/", admin.site.urls),
    path("", DemoPageView.as_view(), name="demo"),
]
