from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("code/", views.RequestCodeView.as_view(), name="request_code"),
    path("token/", views.ObtainTokenView.as_view(), name="obtain_token"),
    path("token/refresh/", views.RefreshTokenView.as_view(), name="refresh_token"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
