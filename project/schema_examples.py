"""Examples of the main flows for the API documentation (also replayed by the schema fuzz test)."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter

ACCESS = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl"
REFRESH = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"

PROFILE = {
    "id": 42,
    "phone": "+79110000000",
    "first_name": "Anna",
    "last_name": "Ivanova",
    "date_joined": "2026-01-15T09:30:00.412305Z",
    "invite_code": "7KQ2XM",
    "invite_url": "https://app.example.com/i/7KQ2XM",
    "activated_invite_code": "H4TZ9P",
    "invited_by": "+79120000000",
    "activated_at": "2026-01-15T09:31:07.080911Z",
    "invitees": ["+79130000000", "+79140000000"],
    "invitees_count": 2,
}

REQUEST_CODE = [
    OpenApiExample("A phone as people write it", value={"phone": "8 (911) 000-00-00"}, request_only=True),
    OpenApiExample(
        "Code sent",
        value={"phone": "+79110000000", "code_length": 4, "expires_in": 300, "retry_after": 60},
        response_only=True,
    ),
]

OBTAIN_TOKEN = [
    OpenApiExample("The code from the SMS", value={"phone": "+79110000000", "code": "1234"}, request_only=True),
    OpenApiExample(
        "Signed in", value={"access": ACCESS, "refresh": REFRESH, "created": True, "user": PROFILE}, response_only=True
    ),
]

REFRESH_TOKEN = [
    OpenApiExample("A live refresh token", value={"refresh": REFRESH}, request_only=True),
    OpenApiExample("A new pair", value={"access": ACCESS, "refresh": REFRESH}, response_only=True),
]

LOGOUT = [OpenApiExample("The refresh token to revoke", value={"refresh": REFRESH}, request_only=True)]

PROFILE_REPLY = [OpenApiExample("Profile", value=PROFILE, response_only=True)]

UPDATE_NAMES = [
    OpenApiExample("New names", value={"first_name": "Anna", "last_name": "Ivanova"}, request_only=True),
    *PROFILE_REPLY,
]

ACTIVATE_INVITE_CODE = [
    OpenApiExample("An invite code in any case", value={"invite_code": "h4tz9p"}, request_only=True),
    *PROFILE_REPLY,
]

INVITEES = [
    OpenApiExample(
        "A page of invitees, newest first",
        # One invitee: drf-spectacular wraps it in the cursor page.
        value={
            "phone": "+79140000000",
            "first_name": "Boris",
            "last_name": "",
            "activated_at": "2026-01-16T10:00:00.164210Z",
        },
        response_only=True,
    ),
]

PREVIEW_INVITE_CODE = [
    OpenApiExample("A known code", value={"invite_code": "H4TZ9P", "inviter": "+7 912 ***-**-00"}, response_only=True),
]

INVITE_CODE_PARAMETER = OpenApiParameter(
    "code",
    str,
    OpenApiParameter.PATH,
    description="An invite code; case-insensitive, surrounding spaces ignored.",
    examples=[OpenApiExample("A known code", value="H4TZ9P")],
)
