from django.urls import path, register_converter

from referrals import views


class AnyText:
    """Any non-empty text, line breaks included: Django's `path` converter stops at them, and a code
    copied with the line it ended on must still reach the view, which trims it."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyText, "any_text")

app_name = "referrals"

urlpatterns = [
    path("me/", views.ProfileView.as_view(), name="profile"),
    path("me/invite/", views.ActivateInviteCodeView.as_view(), name="activate_invite_code"),
    path("me/invitees/", views.ListInviteesView.as_view(), name="invitees"),
    path("invite-codes/<any_text:code>/", views.PreviewInviteCodeView.as_view(), name="preview_invite_code"),
]
