"""Invite codes, activation rules, the profile and the invitee pages, through HTTP."""

import base64
import dataclasses
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import orjson
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from referrals.invite_codes import ALPHABET
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.conftest import code_sent_to, on_delete_actions, room_in_the_rate_window
from tests.referral_graph import make_invitees

pytestmark = pytest.mark.django_db

INVITE_URL = "/api/v1/me/invite/"


def code_of(user):
    return Referral.objects.get(user=user).invite_code


def activate(client, code):
    return client.post(INVITE_URL, {"invite_code": code}, format="json")


def test_every_new_user_gets_a_six_character_unambiguous_code(make_user):
    codes = [code_of(make_user()) for _ in range(50)]

    assert all(len(code) == 6 and set(code) <= set(ALPHABET) for code in codes)
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(codes)) == 50


def test_a_user_created_without_the_save_signal_gets_a_code_when_first_seen(api, outbox, make_user, django_user_model):
    # bulk_create and loaddata skip post_save, which gives codes: such a user must still sign in and invite.
    (imported,) = django_user_model.objects.bulk_create([django_user_model(phone="+79110000055")])
    inviter = make_user()
    api.post("/api/v1/auth/code/", {"phone": imported.phone}, format="json")

    signed_in = api.post(
        "/api/v1/auth/token/", {"phone": imported.phone, "code": code_sent_to(outbox, imported.phone)}, format="json"
    )

    assert signed_in.status_code == 200, signed_in.content
    assert signed_in.json()["user"]["invite_code"] == code_of(imported)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.json()['access']}")
    assert api.get("/api/v1/me/").json()["invite_code"] == code_of(imported)
    assert activate(api, code_of(inviter)).json()["invited_by"] == inviter.phone


def test_a_user_created_without_the_save_signal_can_activate_first(authed, make_user, django_user_model):
    (imported,) = django_user_model.objects.bulk_create([django_user_model(phone="+79110000056")])
    client, inviter = authed(imported), make_user()

    response = activate(client, code_of(inviter))

    assert response.status_code == 200, response.content
    assert response.json()["invite_code"] == code_of(imported)


def test_code_collision_draws_again(make_user, monkeypatch):
    taken = code_of(make_user())
    draws = iter([taken, taken, "ZZZZZZ"])
    monkeypatch.setattr("referrals.services.generate_invite_code", lambda: next(draws))

    assert code_of(make_user()) == "ZZZZZZ"


def test_activation_links_the_user_to_the_inviter(authed, make_user):
    inviter, client = make_user(), authed()

    response = activate(client, code_of(inviter))

    assert response.status_code == 200
    body = response.json()
    assert body["activated_invite_code"] == code_of(inviter)
    assert body["invited_by"] == inviter.phone
    assert body["activated_at"] is not None


def test_code_input_is_trimmed_and_case_insensitive(authed, make_user):
    inviter, client = make_user(), authed()

    response = activate(client, f"  {code_of(inviter).lower()} \n")

    assert response.status_code == 200
    assert response.json()["invited_by"] == inviter.phone


@pytest.mark.parametrize("around", [("\u200b", ""), ("\u2066", "\u2069"), ("\ufeff", "\u200e")])
def test_invisible_characters_pasted_with_a_code_are_dropped(api, authed, make_user, around):
    # Messengers and web pages carry zero-width spaces, byte-order marks and direction marks along with copied text.
    inviter, client = make_user(), authed()
    typed = f"{around[0]}{code_of(inviter)}{around[1]}"

    assert activate(client, typed).json()["invited_by"] == inviter.phone
    assert api.get(f"/api/v1/invite-codes/{quote(typed)}/").status_code == 200


@pytest.mark.parametrize("around", [("", "\n"), ("\n", ""), ("\r\n", "\r\n"), (" ", "\t")])
def test_the_preview_ignores_line_breaks_and_spaces_around_a_code(api, make_user, around):
    # A code copied with the line it ended; the path's own converter stopped at a line break, so this
    # answered the router's not_found.
    code = code_of(make_user())

    response = api.get(f"/api/v1/invite-codes/{quote(around[0] + code + around[1])}/")

    assert (response.status_code, response.json()["invite_code"]) == (200, code)


def test_spaces_left_once_invisible_characters_are_dropped_are_trimmed_too(api, authed, make_user):
    # The field trims spaces, but not past a zero-width space, which goes only after it.
    inviter, client = make_user(), authed()
    typed = f"\u200b {code_of(inviter).lower()} \u200b"

    assert activate(client, typed).json()["invited_by"] == inviter.phone
    assert api.get(f"/api/v1/invite-codes/{quote(typed)}/").status_code == 200


@pytest.mark.parametrize("typed", ["МНК234", "мнк234", "МHK234"])  # noqa: RUF001 - Cyrillic on purpose
def test_cyrillic_look_alikes_typed_in_a_code_read_as_latin(api, authed, make_user, typed):
    # A code read off a screen and typed on a Russian keyboard layout.
    inviter, client = make_user(), authed()
    Referral.objects.filter(user=inviter).update(invite_code="MHK234")

    assert activate(client, typed).json()["invited_by"] == inviter.phone
    assert api.get(f"/api/v1/invite-codes/{quote(typed)}/").json()["invite_code"] == "MHK234"


@pytest.mark.parametrize(("code", "typed"), [("SS2345", "ß2345"), ("S23456", "\u017f23456"), ("ST2345", "ﬆ2345")])
def test_only_ascii_letters_are_case_folded(api, authed, make_user, code, typed):
    # Unicode upper-casing turns these into other strings (ß -> SS): nobody typed those codes.
    inviter, client = make_user(), authed()
    Referral.objects.filter(user=inviter).update(invite_code=code)

    response = activate(client, typed)

    assert (response.status_code, response.json()["code"]) == (400, "invite_code_not_found")
    assert api.get(f"/api/v1/invite-codes/{typed}/").status_code == 404
    assert api.get(f"/api/v1/invite-codes/{code.lower()}/").status_code == 200


def test_same_code_again_is_an_idempotent_retry(authed, make_user):
    inviter, client = make_user(), authed()
    first = activate(client, code_of(inviter))

    again = activate(client, code_of(inviter))

    assert again.status_code == 200
    assert again.json()["activated_at"] == first.json()["activated_at"]
    assert Referral.objects.get(pk=inviter.pk).invitees_count == 1


def test_a_different_code_after_activation_is_409(authed, make_user):
    client = authed()
    activate(client, code_of(make_user()))

    response = activate(client, code_of(make_user()))

    assert response.status_code == 409
    assert response.json() == {"code": "invite_code_already_activated", "detail": response.json()["detail"]}


def test_own_code_is_rejected(authed):
    client = authed()

    response = activate(client, code_of(client.user))

    assert response.status_code == 400
    assert response.json()["code"] == "own_invite_code"


@pytest.mark.parametrize("code", ["ZZZZZZ", "ABC", "0O1IL0", "ABCDEFGH", "abc def", "X" * 64, "X" * 65, "X" * 10_000])
def test_unknown_code_is_invite_code_not_found(authed, code):
    response = activate(authed(), code)

    assert response.status_code == 400
    assert response.json()["code"] == "invite_code_not_found"


@pytest.mark.parametrize("code", ["", "   "])
def test_blank_code_is_a_validation_error(authed, code):
    response = activate(authed(), code)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == ["invite_code"]


def test_unknown_well_formed_code_is_invite_code_not_found(authed):
    response = activate(authed(), "ZZZZZZ")

    assert response.json() == {"code": "invite_code_not_found", "detail": "No user has this invite code."}


def test_direct_cycle_is_refused(authed):
    a, b = authed(), authed()
    assert activate(a, code_of(b.user)).status_code == 200

    response = activate(b, code_of(a.user))

    assert response.status_code == 400
    assert response.json()["code"] == "invite_cycle"


def test_long_cycle_is_refused(authed):
    a, b, c, d = authed(), authed(), authed(), authed()
    activate(a, code_of(b.user))  # a invited by b
    activate(b, code_of(c.user))  # b invited by c
    activate(c, code_of(d.user))  # c invited by d

    response = activate(d, code_of(a.user))

    assert response.json()["code"] == "invite_cycle"
    assert Referral.objects.get(pk=d.user.pk).invited_by_id is None


def test_activation_requires_authentication(api, make_user):
    response = activate(api, code_of(make_user()))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_profile_has_every_field_of_the_contract(authed, make_user):
    inviter, client = make_user(first_name="Ann"), authed()
    activate(client, code_of(inviter))

    body = client.get("/api/v1/me/").json()

    assert set(body) == {
        "id", "phone", "first_name", "last_name", "date_joined", "invite_code", "invite_url",
        "activated_invite_code", "invited_by", "activated_at", "invitees", "invitees_count",
    }  # fmt: skip
    assert body["invite_url"] is None
    assert body["invitees"] == []  # nobody activated this user's code: no list kept
    inviter_client = authed(inviter)
    inviter_body = inviter_client.get("/api/v1/me/").json()
    assert inviter_body["invitees"] == [client.user.phone]
    assert inviter_body["invitees_count"] == 1
    assert inviter_body["invited_by"] is None and inviter_body["activated_invite_code"] is None


@override_settings(INVITE_URL_TEMPLATE="https://app.example.com/i/{code}")
def test_invite_url_follows_the_template(authed):
    client = authed()

    body = client.get("/api/v1/me/").json()

    assert body["invite_url"] == f"https://app.example.com/i/{body['invite_code']}"


def test_profile_lists_the_hundred_newest_invitees_and_counts_all(authed):
    client = authed()
    make_invitees(client.user, 150)

    body = client.get("/api/v1/me/").json()

    assert body["invitees_count"] == 150
    assert len(body["invitees"]) == 100
    assert body["invitees"][0] == "+79120000149"  # the newest first
    assert body["invitees"][-1] == "+79120000050"


def test_patch_changes_names_only(authed):
    client = authed()
    before = client.get("/api/v1/me/").json()

    response = client.patch(
        "/api/v1/me/",
        {"first_name": "Иван", "last_name": "Петров", "phone": "+79000000000", "invite_code": "ZZZZZZ", "id": 1},
        format="json",
    )

    assert response.status_code == 200
    after = response.json()
    assert (after["first_name"], after["last_name"]) == ("Иван", "Петров")
    assert {k: v for k, v in after.items() if "name" not in k} == {k: v for k, v in before.items() if "name" not in k}


def test_patch_validates_name_length(authed):
    response = authed().patch("/api/v1/me/", {"first_name": "x" * 151}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["first_name"]


@pytest.mark.parametrize("name", ["\u202eevil", "a\nb", "bell\u0007", "Ann\u2066a", "one\u2028two"])
def test_names_that_would_spoof_the_inviter_s_list_are_refused(authed, name):
    response = authed().patch("/api/v1/me/", {"last_name": name}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "last_name": ["Names may not contain control characters or text-direction controls."]
    }


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("\u200b", ""),  # looks empty: is empty
        ("\ufeffИван\u200b", "Иван"),  # noqa: RUF001
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\u200d\U0001f469\u200d\U0001f467"),  # joiners inside
        ("\u0645\u0647\u200c\u0633\u0627", "\u0645\u0647\u200c\u0633\u0627"),  # a Persian name's non-joiner
    ],
)
def test_invisible_characters_around_a_name_go_and_inside_it_stay(authed, sent, kept):
    response = authed().patch("/api/v1/me/", {"first_name": sent}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == kept


def test_invitee_pages_are_newest_first_and_walk_every_invitee(authed):
    client = authed()
    make_invitees(client.user, 120)

    seen, url = [], "/api/v1/me/invitees/"
    while url:
        page = client.get(url).json()
        seen += page["results"]
        url = page["next"]

    assert len(seen) == 120
    assert [row["phone"] for row in seen] == [f"+7912{i:07d}" for i in reversed(range(120))]
    assert set(seen[0]) == {"phone", "first_name", "last_name", "activated_at"}


def test_a_page_holds_at_most_a_hundred_invitees_whatever_is_asked(authed):
    client = authed()
    make_invitees(client.user, 101)

    page = client.get("/api/v1/me/invitees/?page_size=1000").json()

    assert len(page["results"]) == 100
    assert page["next"] is not None


def test_invitee_pages_are_stable_under_inserts(authed):
    client = authed()
    make_invitees(client.user, 60)
    first = client.get("/api/v1/me/invitees/?page_size=20").json()
    make_invitees(client.user, 5, phone_prefix="+7913")  # newer invitees arrive meanwhile

    second = client.get(first["next"]).json()

    assert [row["phone"] for row in second["results"]] == [f"+7912{i:07d}" for i in reversed(range(20, 40))]


def test_bad_cursor_is_404_envelope(authed):
    response = authed().get("/api/v1/me/invitees/?cursor=garbage")

    assert response.status_code == 404
    assert set(response.json()) == {"code", "detail"}


def test_public_preview_masks_the_inviter_phone(api, make_user):
    inviter = make_user("+79111234567")

    response = api.get(f"/api/v1/invite-codes/{code_of(inviter).lower()}/")

    assert response.status_code == 200
    assert response.json() == {"invite_code": code_of(inviter), "inviter": "+7 911 ***-**-67"}


def test_public_preview_of_unknown_code_is_404(api):
    response = api.get("/api/v1/invite-codes/ZZZZZZ/")

    assert response.status_code == 404
    assert response.json() == {"code": "invite_code_not_found", "detail": "No user has this invite code."}


def test_public_preview_is_throttled_per_ip(api, make_user, settings):
    settings.AUTH_IP_RATE = "2/minute"
    code = code_of(make_user())
    room_in_the_rate_window()

    statuses = [api.get(f"/api/v1/invite-codes/{code}/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_deleting_an_invitee_keeps_the_count_true(authed, make_user):
    inviter, client = make_user(), authed()
    activate(client, code_of(inviter))

    client.user.delete()

    assert Referral.objects.get(pk=inviter.pk).invitees_count == 0


def test_the_database_itself_keeps_the_counts():
    # A migration that rebuilds the table on SQLite would drop the triggers without a word.
    if connection.vendor == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'referrals_referral'::regclass AND NOT tgisinternal"
        # Beside them, the profile's newest invitees' (tests/test_recent_invitees.py).
        others = ["referrals_recent_invitees_deleted", "referrals_recent_invitees_inserted"]
        others += ["referrals_recent_invitees_truncated", "referrals_recent_invitees_updated"]
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'referrals_referral'"
        others = []
    counts = ["referrals_count_invitees_inserted", "referrals_count_invitees_updated"]
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY 1")
        assert [name for (name,) in cursor.fetchall()] == [*counts, *others, "referrals_uncount_invitee"]


@pytest.mark.postgres
def test_the_database_itself_clears_a_deleted_inviter():
    # A later AlterField of invited_by would recreate the key without its action.
    assert on_delete_actions("referrals_referral", "referrals_referral") == ["n"]  # ON DELETE SET NULL


def test_a_raw_delete_is_uncounted_too(make_user):
    inviter, first, second = make_user(), make_user(), make_user()
    for user in (first, second):
        activate_invite_code(user=user, code=code_of(inviter))

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM referrals_referral WHERE user_id = %s", [first.pk])

    assert Referral.objects.get(pk=inviter.pk).invitees_count == 1


def test_deleting_an_inviter_keeps_the_activation_spent(authed, make_user):
    inviter, client = make_user(), authed()
    old_code = code_of(inviter)
    activated_at = activate(client, old_code).json()["activated_at"]
    inviter.delete()

    response = activate(client, code_of(make_user()))

    assert response.status_code == 409
    profile = client.get("/api/v1/me/").json()
    assert (profile["activated_at"], profile["activated_invite_code"], profile["invited_by"]) == (
        activated_at,
        None,
        None,
    )
    assert activate(client, old_code).json()["code"] == "invite_code_already_activated"


def test_after_an_activation_every_other_code_is_409_whether_it_exists_or_not(authed, make_user):
    # Else 409 against 400 told an activated user which codes exist, past the preview's per-IP limit.
    client = authed()
    activate(client, code_of(make_user()))
    taken = set(Referral.objects.values_list("invite_code", flat=True))

    unknown = next(code for code in ("ZZZZZZ", "ZZZZZY", "ZZZZZX") if code not in taken)
    answers = [activate(client, code) for code in (code_of(make_user()), unknown, code_of(client.user), NOT_A_CODE)]

    assert [(answer.status_code, answer.json()["code"]) for answer in answers] == [
        (409, "invite_code_already_activated")
    ] * 4


def test_profile_reply_is_what_the_serializer_describes(authed, make_user):
    from referrals.selectors import get_profile, get_profile_reply
    from referrals.serializers import ProfileSerializer

    inviter, client = make_user(first_name="Ann"), authed()
    activate(client, code_of(inviter))
    make_invitees(client.user, 3)

    profile = get_profile(user_id=client.user.pk)
    if isinstance(profile.invitees, orjson.Fragment):  # PostgreSQL's list, already JSON
        profile = dataclasses.replace(profile, invitees=orjson.loads(orjson.dumps(profile.invitees)))
    expected = ProfileSerializer(profile).data
    reply = client.get("/api/v1/me/").json()

    assert reply == json_roundtrip(expected)
    assert reply == json_roundtrip(get_profile_reply(user_id=client.user.pk))


def test_invitee_rows_are_what_the_serializer_describes(authed):
    from referrals.views import ListInviteesView

    client = authed()
    make_invitees(client.user, 3)

    rows = client.get("/api/v1/me/invitees/").json()["results"]

    serialized = ListInviteesView.OutputSerializer(
        [{**row, "activated_at": parse_datetime(row["activated_at"])} for row in rows], many=True
    ).data
    assert rows == json_roundtrip(serialized)


def json_roundtrip(data):
    from rest_framework.renderers import JSONRenderer

    from project.renderers import JSONEncoder

    class DRFRenderer(JSONRenderer):
        encoder_class = JSONEncoder  # DRF's, which also reads back the profile's invitees kept as JSON

    return json.loads(DRFRenderer().render(data))


def test_disabled_account_cannot_read_or_change_its_profile(authed, make_user):
    client = authed()
    client.user.is_active = False
    client.user.save()

    assert client.get("/api/v1/me/").json()["code"] == "account_disabled"
    assert client.patch("/api/v1/me/", {"first_name": "X"}, format="json").status_code == 403
    assert activate(client, code_of(make_user())).json()["code"] == "account_disabled"
    client.user.refresh_from_db()
    assert client.user.first_name == ""


# A code that no code could be (too short, not of the alphabet) is answered after the account's
# state too: a client told that no user has it would let a disabled or deleted account try again.
SOME_CODE, NOT_A_CODE = "some user's code", "zz"


@pytest.mark.parametrize("code", [SOME_CODE, NOT_A_CODE])
def test_disabled_account_cannot_activate_a_code(authed, make_user, code):
    client = authed()
    client.user.is_active = False
    client.user.save()

    response = activate(client, code_of(make_user()) if code == SOME_CODE else code)

    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


def test_token_of_a_deleted_user_is_token_not_valid(api, sign_in, django_user_model):
    tokens = sign_in("+79110000001")
    django_user_model.objects.filter(phone="+79110000001").delete()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    response = api.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize("url", ["/api/v1/auth/token/refresh/", "/api/v1/auth/logout/"])
def test_refresh_token_of_a_deleted_user_says_there_is_no_account(api, sign_in, django_user_model, url):
    tokens = sign_in("+79110000001")
    django_user_model.objects.filter(phone="+79110000001").delete()

    response = api.post(url, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    assert response.json() == {"code": "token_not_valid", "detail": "No active account found for the given token."}


@pytest.mark.parametrize("code", [SOME_CODE, NOT_A_CODE])
def test_activation_by_a_deleted_users_token_is_token_not_valid(api, sign_in, django_user_model, make_user, code):
    tokens = sign_in("+79110000001")
    code = code_of(make_user()) if code == SOME_CODE else code
    django_user_model.objects.filter(phone="+79110000001").delete()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    response = activate(api, code)

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_disabled_accounts_real_token_is_refused_by_profile_and_activation(api, sign_in, django_user_model, make_user):
    tokens = sign_in("+79110000001")
    django_user_model.objects.filter(phone="+79110000001").update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    assert api.get("/api/v1/me/").json()["code"] == "account_disabled"
    assert activate(api, code_of(make_user())).json()["code"] == "account_disabled"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+79111234567", "+7 911 ***-**-67"),
        ("+14155550123", "+1 415-***-**23"),
        ("+6834002", "+683 **02"),  # short numbers stay masked: at least half the digits hidden
        ("+29022158", "+290 ***58"),
    ],
)
def test_masked_phones_hide_at_least_half_the_digits(phone, masked):
    from accounts.phone_numbers import mask_phone

    assert mask_phone(phone) == masked


def walk(client, url, link):
    """Every page from `url` on, following `link` ("next" or "previous"), a list of phones each."""
    pages = []
    while url:
        assert len(pages) < 100, "the links go round in circles"
        page = client.get(url).json()
        pages.append([row["phone"] for row in page["results"]])
        url = page[link]
    return pages


def test_invitee_pages_walk_any_number_of_equal_timestamps_both_ways(authed):
    # DRF's cursor counts an offset past equal positions and stops counting at 1,000: the
    # pages then came round to the same rows forever. The cursor names the row instead.
    client = authed()
    make_invitees(client.user, 1250)
    Referral.objects.filter(invited_by_id=client.user.pk).update(activated_at=timezone.now())
    expected = list(
        Referral.objects.filter(invited_by_id=client.user.pk).order_by("-user_id").values_list("user__phone", flat=True)
    )

    forward = walk(client, "/api/v1/me/invitees/?page_size=100", "next")
    last = client.get("/api/v1/me/invitees/?page_size=100").json()
    for _ in range(len(forward) - 1):
        last = client.get(last["next"]).json()
    backward = walk(client, last["previous"], "previous")

    assert [phone for page in forward for phone in page] == expected
    assert backward == forward[-2::-1]


def drf_cursor(**tokens):
    """A cursor in the form DRF's own CursorPagination writes: no user, an offset over equal moments."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


def test_cursors_written_before_rows_were_named_still_page_as_they_did(authed):
    client = authed()
    make_invitees(client.user, 10)
    moment = timezone.now() - timedelta(hours=1)
    referrals = Referral.objects.filter(invited_by_id=client.user.pk)
    referrals.filter(user_id__in=list(referrals.order_by("user_id").values_list("pk", flat=True)[:6])).update(
        activated_at=moment
    )
    newest_first = [row["phone"] for row in walk_rows(client, "/api/v1/me/invitees/")]

    assert newest_first[4:] == [f"+7912{i:07d}" for i in reversed(range(6))]  # the 6 at `moment`, oldest
    # DRF's cursor for "after the 2nd of those 6": the moment of the row before them, and an offset of 2.
    before_them = Referral.objects.get(user__phone=newest_first[3]).activated_at
    page = client.get(f"/api/v1/me/invitees/?page_size=3&cursor={drf_cursor(o=2, p=str(before_them))}").json()

    assert [row["phone"] for row in page["results"]] == newest_first[6:9]
    assert [row["phone"] for row in client.get(page["next"]).json()["results"]] == newest_first[9:]


def test_cursor_links_need_no_escaping_and_keep_the_other_parameters(authed):
    client = authed()
    make_invitees(client.user, 9)

    first = client.get("/api/v1/me/invitees/?page_size=3&lang=x").json()
    second = client.get(first["next"]).json()

    for link in (first["next"], second["next"], second["previous"]):
        query = urlsplit(link).query
        assert re.fullmatch(r"cursor=[A-Za-z0-9_-]+&lang=x&page_size=3", query), link
    assert [row["phone"] for row in second["results"]] == [f"+7912{i:07d}" for i in (5, 4, 3)]
    assert client.get(second["previous"]).json()["results"] == first["results"]


def test_cursor_links_keep_parameters_written_in_other_scripts(authed):
    client = authed()
    make_invitees(client.user, 5)

    # Sent unescaped, as a browser's address bar may: WSGI hands the query over as Latin-1.
    first = client.get("/api/v1/me/invitees/?page_size=\uff12&note=\u043f\u0440\u0438\u0432\u0435\u0442").json()
    second = client.get(first["next"]).json()

    assert parse_qs(urlsplit(first["next"]).query) | {"cursor": []} == {
        "cursor": [],
        "note": ["\u043f\u0440\u0438\u0432\u0435\u0442"],
        "page_size": ["\uff12"],  # a full-width 2, read as 2
    }
    assert [len(first["results"]), len(second["results"])] == [2, 2]


def test_cursors_written_in_standard_base64_still_page(authed):
    client = authed()
    make_invitees(client.user, 6)
    newest_first = walk_rows(client, "/api/v1/me/invitees/")
    third = Referral.objects.get(user__phone=newest_first[2]["phone"])
    # The form of the release before: the moment as str() gives it ("+00:00" escaped), padded base64.
    cursor = quote(drf_cursor(p=str(third.activated_at), i=str(third.user_id)))

    page = client.get(f"/api/v1/me/invitees/?page_size=2&cursor={cursor}").json()

    assert page["results"] == newest_first[3:5]


def walk_rows(client, url):
    rows = []
    while url:
        page = client.get(url).json()
        rows += page["results"]
        url = page["next"]
    return rows


def test_a_cursor_past_either_end_links_back_into_the_list(authed):
    client = authed()
    make_invitees(client.user, 5)
    every = [row["phone"] for row in walk_rows(client, "/api/v1/me/invitees/")]
    long_ago = drf_cursor(p="2000-01-01T00:00:00+00:00")
    far_ahead = drf_cursor(r="1", p="2100-01-01T00:00:00+00:00")

    past_the_end = client.get(f"/api/v1/me/invitees/?page_size=2&cursor={long_ago}").json()
    before_the_start = client.get(f"/api/v1/me/invitees/?page_size=2&cursor={far_ahead}").json()

    assert (past_the_end["results"], past_the_end["next"]) == ([], None)
    assert [row["phone"] for row in client.get(past_the_end["previous"]).json()["results"]] == every[-2:]
    assert (before_the_start["results"], before_the_start["previous"]) == ([], None)
    assert before_the_start["next"].endswith("/api/v1/me/invitees/?page_size=2")
    assert [row["phone"] for row in client.get(before_the_start["next"]).json()["results"]] == every[:2]


@pytest.mark.parametrize("page_size", [7, 50, 100])
def test_invitee_pages_walk_both_ways_over_equal_timestamps(authed, page_size):
    client = authed()
    make_invitees(client.user, 130)
    # Runs of equal timestamps: the cursor then needs an offset, and pages split them.
    start = timezone.now()
    for index, user_id in enumerate(Referral.objects.filter(invited_by_id=client.user.pk).values_list("pk", flat=True)):
        Referral.objects.filter(pk=user_id).update(activated_at=start - timedelta(minutes=index // 9))
    assert Referral.objects.filter(invited_by_id=client.user.pk).values("activated_at").distinct().count() == 15
    expected = [
        row["user__phone"]
        for row in Referral.objects.filter(invited_by_id=client.user.pk)
        .order_by("-activated_at", "-user_id")
        .values("user__phone")
    ]

    forward, url, last = [], f"/api/v1/me/invitees/?page_size={page_size}", None
    while url:
        last = client.get(url).json()
        forward.append([row["phone"] for row in last["results"]])
        url = last["next"]
    backward, url = [], last["previous"]
    while url:
        page = client.get(url).json()
        backward.insert(0, [row["phone"] for row in page["results"]])
        url = page["previous"]

    assert [phone for page in forward for phone in page] == expected
    assert backward == forward[:-1]


def test_a_disabled_accounts_code_still_works(authed, make_user):
    inviter = make_user()
    inviter.is_active = False
    inviter.save()
    client = authed()

    preview = client.get(f"/api/v1/invite-codes/{code_of(inviter)}/")
    response = activate(client, code_of(inviter))

    assert preview.status_code == 200
    assert response.status_code == 200
    assert response.json()["invited_by"] == inviter.phone
