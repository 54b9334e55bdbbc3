from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("auth/code/", views.RequestCodeView.as_view(), name="request_code"),
    path("auth/token/", views.ObtainTokenView.as_view(), name="obtain_token"),
    path("auth/token/refresh/", views.RefreshTokenView.as_view(), name="refresh_token"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
]
