from django.urls import path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("me/", views.ProfileView.as_view(), name="profile"),
    path("me/invite/", views.ActivateInviteCodeView.as_view(), name="activate_invite_code"),
    path("me/invitees/", views.ListInviteesView.as_view(), name="invitees"),
    path("invite-codes/<path:code>/", views.PreviewInviteCodeView.as_view(), name="preview_invite_code"),
]
