"""The Django admin: users with their referral data, read-only invite data, the invite tree."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import CheckFailure, CodeSend, User
from accounts.tokens import issue_tokens
from referrals.models import Referral
from referrals.selectors import get_invite_chain, get_invite_tree
from referrals.services import activate_invite_code
from tests.conftest import free_port, room_in_the_rate_window

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("+79000000001", is_staff=True, is_superuser=True))
    return client


def code_of(user):
    return Referral.objects.get(user=user).invite_code


def invite(user, *, by):
    activate_invite_code(user=user, code=code_of(by))


def change_url(user):
    return reverse("admin:accounts_user_change", args=[user.pk])


def tree_url(user):
    return f"/admin/accounts/user/{user.pk}/invite-tree/"


def listed_phones(response):
    """The phones in the changelist's result rows, in order."""
    return re.findall(r'<th class="field-phone"><a href="[^"]+">([^<]+)</a>', response.content.decode())


def test_login_page_signs_staff_in_by_phone(make_user):
    make_user("+79110000000", password="a-long-staff-password", is_staff=True)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "+79110000000", "password": "a-long-staff-password"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_login_page_takes_a_phone_as_people_write_it(make_user):
    make_user("+79110000042", password="a-long-staff-password", is_staff=True)
    client = Client()
    written = "+7 (911) 000-00-42"  # longer than the stored +79110000042

    field = re.search(r'<input[^>]*name="username"[^>]*>', client.get("/admin/login/").content.decode()).group()
    assert int(re.search(r'maxlength="(\d+)"', field).group(1)) >= len(written)  # a browser cuts off the rest
    response = client.post("/admin/login/?next=/admin/", {"username": written, "password": "a-long-staff-password"})
    assert response.status_code == 302


def test_changelist_finds_users_by_phone(admin_client, make_user):
    make_user("+79110000001")
    make_user("+79110000002")
    response = admin_client.get(CHANGELIST, {"q": "9110000002"})
    assert response.status_code == 200
    assert listed_phones(response) == ["+79110000002"]


@pytest.mark.parametrize(
    "url",
    [CHANGELIST, "/admin/accounts/checkfailure/", "/admin/accounts/codesend/", "/admin/referrals/referral/"],
)
@pytest.mark.parametrize("typed", ["89110000002", "+7 911 000-00-02", "8 (911) 000-00-02"])
def test_a_phone_is_found_as_people_write_it(admin_client, make_user, url, typed):
    # Support staff are told numbers in these forms; the rows hold E.164.
    for phone in ("+79110000001", "+79110000002"):
        make_user(phone)
        CheckFailure.objects.create(phone=phone)
        CodeSend.objects.create(phone=phone)

    html = admin_client.get(url, {"q": typed}).content.decode()

    assert "+79110000002" in html
    assert "+79110000001" not in html


@pytest.mark.parametrize(
    "url",
    [CHANGELIST, "/admin/accounts/checkfailure/", "/admin/accounts/codesend/", "/admin/referrals/referral/"],
)
def test_a_whole_phone_is_looked_up_by_its_index_and_nothing_reads_every_row(admin_client, make_user, url):
    for phone in ("+79110000001", "+79110000002"):
        make_user(phone)
        CheckFailure.objects.create(phone=phone)
        CodeSend.objects.create(phone=phone)

    with CaptureQueriesContext(connection) as queries:
        html = admin_client.get(url, {"q": "8 (911) 000-00-02"}).content.decode()

    assert "+79110000002" in html
    assert "+79110000001" not in html
    searches = [query["sql"] for query in queries if "LIKE" in query["sql"].upper()]
    assert searches == []  # a search for a part of a value reads every row: no index serves it
    whole_table_counts = [
        sql for sql in (query["sql"].upper() for query in queries) if "COUNT(" in sql and "WHERE" not in sql
    ]
    assert whole_table_counts == []  # nor is every row counted for "(N total)"


@pytest.mark.parametrize("url", [CHANGELIST, "/admin/referrals/referral/"])
def test_an_invite_code_that_is_also_a_phone_number_of_the_region_is_found(admin_client, make_user, settings, url):
    settings.PHONE_REGION = "DE"  # where 234567 is a valid number as well
    wanted = make_user("+79110000001")
    make_user("+79110000002")
    Referral.objects.filter(user=wanted).update(invite_code="234567")

    html = admin_client.get(url, {"q": "234567"}).content.decode()

    assert "+79110000001" in html
    assert "+79110000002" not in html


@pytest.mark.parametrize("url", [CHANGELIST, "/admin/referrals/referral/"])
@pytest.mark.parametrize(
    "written",
    [
        # the Cyrillic look-alikes of these Latin letters
        lambda code: code.translate(
            str.maketrans("ABEKMHPCTYX", "\u0410\u0412\u0415\u041a\u041c\u041d\u0420\u0421\u0422\u0423\u0425")
        ),
        lambda code: f"{code}\u200b",  # a zero-width space copied along
    ],
)
def test_an_invite_code_is_searched_for_as_the_api_reads_it(admin_client, make_user, url, written):
    wanted = make_user("+79110000001")
    make_user("+79110000002")
    Referral.objects.filter(user=wanted).update(invite_code="BYCHRX")

    html = admin_client.get(url, {"q": written("BYCHRX")}).content.decode()

    assert "+79110000001" in html
    assert "+79110000002" not in html


@pytest.mark.parametrize(
    ("url", "relation"), [(CHANGELIST, "referral"), ("/admin/referrals/referral/", "invitees")]
)  # fmt: skip
def test_a_popup_naming_a_reverse_relation_is_refused_not_a_500(admin_client, url, relation):
    response = admin_client.get(url, {"_to_field": relation, "_popup": "1"})

    assert response.status_code == 400


@pytest.mark.parametrize("typed", [str.upper, str.lower])
def test_changelist_finds_users_by_invite_code_in_any_case(admin_client, make_user, typed):
    make_user("+79110000001")
    wanted = make_user("+79110000002")
    response = admin_client.get(CHANGELIST, {"q": typed(code_of(wanted))})
    assert listed_phones(response) == ["+79110000002"]


def test_changelist_shows_invite_code_inviter_and_invitee_count(admin_client, make_user):
    inviter, invitee, other = make_user("+79110000001"), make_user("+79110000002"), make_user("+79110000003")
    invite(invitee, by=inviter)
    invite(other, by=inviter)
    html = admin_client.get(CHANGELIST, {"q": "+7911000000"}).content.decode()
    row_of = {phone: row for row in html.split("<tr")[1:] for phone in re.findall(r"\+7911000000\d", row)[:1]}
    assert f'<td class="field-invite_code">{code_of(inviter)}</td>' in row_of["+79110000001"]
    assert '<td class="field-invitees_count">2</td>' in row_of["+79110000001"]
    assert '<td class="field-inviter_phone">+79110000001</td>' in row_of["+79110000002"]
    assert '<td class="field-invitees_count">0</td>' in row_of["+79110000002"]


def test_changelist_costs_the_same_queries_for_1_and_50_users(admin_client, make_user, django_assert_max_num_queries):
    root = make_user("+79110000000")
    with CaptureQueriesContext(connection) as one_user:
        assert admin_client.get(CHANGELIST).status_code == 200
    previous = root
    for i in range(1, 50):
        user = make_user(f"+7911{i:07d}")
        invite(user, by=previous)
        previous = user
    with django_assert_max_num_queries(len(one_user)):
        response = admin_client.get(CHANGELIST)
    assert len(listed_phones(response)) == 51  # the 50 users and the superuser


def test_change_page_shows_referral_data_read_only(admin_client, make_user):
    inviter, user = make_user("+79110000001"), make_user("+79110000002")
    invite(user, by=inviter)
    response = admin_client.get(change_url(user))
    assert response.status_code == 200
    html = response.content.decode()
    assert code_of(user) in html
    assert f'<a href="{change_url(inviter)}">+79110000001</a> ({code_of(inviter)})' in html
    assert f'href="{tree_url(user)}"' in html
    activated = re.search(r'field-activated_at.*?<div class="readonly">([^<]*)</div>', html, re.S).group(1)
    assert str(timezone.now().year) in activated
    form = response.context["adminform"].form
    assert not {"invite_code", "invited_by", "activated_at", "invitees_count"} & set(form.fields)
    assert 'name="invite_code"' not in html
    assert 'name="invited_by"' not in html


def readonly_value(html: str, field: str) -> str:
    return re.search(rf'field-{field}.*?<div class="readonly">([^<]*)</div>', html, re.S).group(1).strip()


def test_change_page_shows_when_the_person_last_signed_in_or_refreshed_in_the_app(admin_client, make_user):
    # Django's last_login is the admin's sign-in only: empty for everyone who signs in by SMS.
    user, never = make_user("+79110000001"), make_user("+79110000002")
    issue_tokens(user=user)

    assert str(timezone.now().year) in readonly_value(
        admin_client.get(change_url(user)).content.decode(), "last_in_app"
    )
    assert readonly_value(admin_client.get(change_url(never)).content.decode(), "last_in_app") == "-"
    assert "Last admin sign-in" in admin_client.get(change_url(user)).content.decode()


@pytest.mark.parametrize("url", [change_url, lambda user: f"/admin/referrals/referral/{user.pk}/change/"])
def test_nobody_as_inviter_reads_as_the_admins_dash_not_none(admin_client, make_user, url):
    html = admin_client.get(url(make_user("+79110000001"))).content.decode()

    inviter = re.search(r'field-invited_by\w*.*?<div class="readonly">([^<]*)</div>', html, re.S).group(1)
    assert inviter == "-"


@pytest.mark.parametrize(
    ("first_name", "saved"),
    [
        ("\u200b Anna \ufeff", "Anna"),  # invisible characters and spaces at either end go, as in PATCH /me/
        ("evil\u202e", None),  # a direction override: refused, as the API refuses it
        ("An\nna", None),
    ],
)
def test_the_change_form_reads_names_as_the_api_does(admin_client, make_user, first_name, saved):
    user = make_user("+79110000002")
    form = {"phone": user.phone, "first_name": first_name, "last_name": "", "is_active": "on"}
    form |= {"last_login_0": "", "last_login_1": "", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"}

    response = admin_client.post(change_url(user), form)

    user.refresh_from_db()
    if saved is None:
        assert response.status_code == 200
        assert "first_name" in response.context["adminform"].form.errors
        assert user.first_name == ""
    else:
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert user.first_name == saved


def test_a_name_the_person_changed_while_the_page_was_open_is_kept(admin_client, authed, make_user):
    # Staff opens the page, the person renames themselves (PATCH /me/), staff saves another field:
    # the page wrote back the names it had shown, undoing the person's change.
    user = make_user("+79110000002", first_name="Old")
    page = admin_client.get(change_url(user)).content.decode()
    shown = dict(re.findall(r'<input type="hidden" name="(initial-[a-z_]+)"(?: value="([^"]*)")?', page))
    assert shown == {"initial-first_name": "Old", "initial-last_name": ""}  # what the page showed
    renamed = authed(user).patch("/api/v1/me/", {"first_name": "Ivan"}, format="json")
    assert renamed.status_code == 200

    form = {"phone": user.phone, "first_name": "Old", "last_name": "", "is_active": "on", "is_staff": "on"}
    form |= {"last_login_0": "", "last_login_1": "", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"}
    response = admin_client.post(change_url(user), form | shown)

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.first_name, user.is_staff) == ("Ivan", True)


def test_a_name_staff_changed_is_saved_over_the_persons(admin_client, authed, make_user):
    user = make_user("+79110000002", first_name="Old")
    authed(user).patch("/api/v1/me/", {"first_name": "Ivan"}, format="json")
    form = {"phone": user.phone, "first_name": "Anna", "last_name": "", "is_active": "on"}
    form |= {"last_login_0": "", "last_login_1": "", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"}

    response = admin_client.post(change_url(user), form | {"initial-first_name": "Old", "initial-last_name": ""})

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.first_name == "Anna"


def test_a_page_shown_again_after_an_error_keeps_the_names_it_first_showed(admin_client, make_user):
    user = make_user("+79110000002", first_name="Old")
    form = {"phone": user.phone, "first_name": "Anna", "last_name": "evil\u202e", "is_active": "on"}
    form |= {"last_login_0": "", "last_login_1": "", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"}

    page = admin_client.post(change_url(user), form | {"initial-first_name": "Old", "initial-last_name": ""})

    assert page.status_code == 200  # the last name is refused
    assert re.search(r'name="initial-first_name" value="Old"', page.content.decode())  # not staff's "Anna"


def test_a_name_cleared_on_a_page_without_the_shown_names_is_cleared(admin_client, make_user):
    # A page from before the names were sent back (or any client that leaves them out) is compared
    # with the stored names, as before.
    user = make_user("+79110000002", first_name="Old")
    form = {"phone": user.phone, "first_name": "", "last_name": "", "is_active": "on"}
    form |= {"last_login_0": "", "last_login_1": "", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"}

    response = admin_client.post(change_url(user), form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.first_name == ""


def test_posting_the_change_form_edits_names_but_not_invite_data(admin_client, make_user):
    inviter, user, stranger = make_user("+79110000001"), make_user("+79110000002"), make_user("+79110000003")
    invite(user, by=inviter)
    before = Referral.objects.get(user=user)
    response = admin_client.post(
        change_url(user),
        {
            "phone": "8 911 000 00 02",
            "first_name": "Anna",
            "last_name": "Petrova",
            "is_active": "on",
            "is_staff": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
            "invite_code": "ZZZZZZ",
            "invited_by": stranger.pk,
            "activated_at": "2020-01-01 00:00:00",
            "invitees_count": "99",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.phone, user.first_name, user.last_name, user.is_staff) == ("+79110000002", "Anna", "Petrova", True)
    after = Referral.objects.get(user=user)
    assert (after.invite_code, after.invited_by_id, after.activated_at, after.invitees_count) == (
        before.invite_code,
        inviter.pk,
        before.activated_at,
        0,
    )


def test_referrals_are_view_only(admin_client, make_user):
    user = make_user("+79110000001")
    url = reverse("admin:referrals_referral_change", args=[user.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert code_of(user) in response.content.decode()
    assert admin_client.post(url, {"invite_code": "ZZZZZZ"}).status_code == 403
    assert admin_client.get(reverse("admin:referrals_referral_add")).status_code == 403
    assert admin_client.get(reverse("admin:referrals_referral_changelist"), {"q": code_of(user)}).status_code == 200
    assert Referral.objects.get(user=user).invite_code == code_of(user)


def test_deleting_a_user_deletes_their_referral_and_uncounts_them(admin_client, make_user):
    inviter, invitee = make_user("+79110000001"), make_user("+79110000002")
    invite(invitee, by=inviter)
    url = reverse("admin:accounts_user_delete", args=[invitee.pk])

    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert "permission" not in confirm.content.decode()
    assert admin_client.post(url, {"post": "yes"}).status_code == 302

    assert not User.objects.filter(pk=invitee.pk).exists()
    assert not Referral.objects.filter(user_id=invitee.pk).exists()
    assert Referral.objects.get(user=inviter).invitees_count == 0


def test_delete_selected_deletes_users_with_their_referrals(admin_client, make_user):
    inviter, first, second = make_user("+79110000001"), make_user("+79110000002"), make_user("+79110000003")
    invite(first, by=inviter)
    invite(second, by=inviter)

    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert not User.objects.filter(pk__in=[first.pk, second.pk]).exists()
    assert Referral.objects.get(user=inviter).invitees_count == 0


def test_delete_selected_deletes_more_than_a_thousand_users_at_once(admin_client):
    # "Select all 1,201" posts every id back from the confirmation page, past Django's 1,000 fields.
    User.objects.bulk_create([User(phone=f"+7911{number:07d}") for number in range(1_201)])
    ids = list(User.objects.filter(phone__startswith="+7911").values_list("pk", flat=True))

    response = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(phone__startswith="+7911").exists()


@pytest.mark.parametrize("how", ["delete page", "list action"])
def test_the_admin_history_of_a_deleted_user_keeps_no_phone(admin_client, make_user, how):
    user, kept = make_user("+79110000002"), make_user("+79110000003")
    form = {
        "phone": user.phone,
        "first_name": "Anna",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": "2026-11-01",
        "date_joined_1": "10:00:00",
        "initial-date_joined_0": "2026-11-01",
        "initial-date_joined_1": "10:00:00",
    }
    for changed in (user, kept):  # a change each, logged with the user's phone
        form["phone"] = changed.phone
        assert admin_client.post(reverse("admin:accounts_user_change", args=[changed.pk]), form).status_code == 302
    refused = CheckFailure.objects.create(phone=user.phone)  # support lifting the phone's lock: logged by phone too
    admin_client.post(
        "/admin/accounts/checkfailure/", {"action": "delete_selected", "_selected_action": [refused.pk], "post": "yes"}
    )
    if how == "delete page":
        admin_client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})
    else:
        admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"})

    history = LogEntry.objects.filter(content_type__model="user", object_id=str(user.pk))
    assert history.count() == 2
    assert {entry.object_repr for entry in history} == {"+7 911 ***-**-02"}  # recognisable, not callable
    assert not LogEntry.objects.filter(object_repr__contains="79110000002").exists()
    assert LogEntry.objects.get(content_type__model="checkfailure").object_repr.startswith("+7 911 ***-**-02 20")
    assert LogEntry.objects.get(content_type__model="user", object_id=str(kept.pk)).object_repr == "+79110000003"
    assert admin_client.get(reverse("admin:index")).content.decode().count("+7 911 ***-**-02") >= 1


def test_signing_out_everywhere_revokes_every_live_refresh_token_of_the_users(admin_client, make_user, api):
    user, other = make_user("+79110000002"), make_user("+79110000003")
    sessions = [issue_tokens(user=user) for _ in range(2)]
    spent = issue_tokens(user=user)
    assert api.post("/api/v1/auth/logout/", {"refresh": spent["refresh"]}, format="json").status_code == 204
    others = issue_tokens(user=other)

    response = admin_client.post(
        CHANGELIST, {"action": "sign_out_everywhere", "_selected_action": [user.pk]}, follow=True
    )

    assert "Refresh tokens revoked: 2." in response.content.decode()
    for tokens in sessions:
        refused = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
        assert refused.status_code == 401
    assert api.post("/api/v1/auth/token/refresh/", {"refresh": others["refresh"]}, format="json").status_code == 200
    assert User.objects.get(pk=user.pk).is_active  # signed out, not disabled: the next sign-in works


def test_signing_out_everywhere_revokes_the_tokens_of_every_selected_user(admin_client, make_user, api):
    users = [make_user(f"+7911000001{i}") for i in range(3)]
    sessions = [issue_tokens(user=user) for user in users]

    response = admin_client.post(
        CHANGELIST, {"action": "sign_out_everywhere", "_selected_action": [user.pk for user in users]}, follow=True
    )

    assert "Refresh tokens revoked: 3." in response.content.decode()
    for tokens in sessions:
        refused = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
        assert refused.status_code == 401


def test_signing_out_everywhere_needs_the_change_permission(make_user):
    staff = make_user("+79000000002", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = Client()
    client.force_login(staff)

    assert "sign_out_everywhere" not in client.get(CHANGELIST).content.decode()


def test_staff_who_may_only_view_users_see_a_users_page(make_user):
    staff = make_user("+79000000002", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = Client()
    client.force_login(staff)
    user = make_user("+79110000001", first_name="Anna")

    page = client.get(change_url(user))

    assert page.status_code == 200
    assert "Anna" in page.content.decode()
    assert 'name="first_name"' not in page.content.decode()  # shown, not editable


def test_deleting_users_still_needs_the_delete_permission(make_user):
    staff = make_user("+79000000002", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client = Client()
    client.force_login(staff)
    user = make_user("+79110000001")

    assert client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=user.pk).exists()


@pytest.fixture
def three_levels(make_user):
    """root <- a, b; a <- a1, a2; a1 <- a1x; and the root's own inviter `top`."""
    users = {name: make_user(f"+7911000{i:04d}") for i, name in enumerate(["top", "root", "a", "b", "a1", "a2", "a1x"])}
    for name, inviter in [("root", "top"), ("a", "root"), ("b", "root"), ("a1", "a"), ("a2", "a"), ("a1x", "a1")]:
        invite(users[name], by=users[inviter])
    return users


def tree_rows(response):
    """(depth, phone) of each row of the invite tree table, in order."""
    html = response.content.decode()
    return [
        (int(depth), phone)
        for depth, phone in re.findall(
            r'<tr class="depth-\d+">\s*<td>(\d+)</td>\s*<td[^>]*>\s*<a href="[^"]+">([^<]+)</a>', html
        )
    ]


def test_invite_tree_lists_every_level_depth_first_with_depths(admin_client, three_levels):
    phone = {name: user.phone for name, user in three_levels.items()}
    response = admin_client.get(tree_url(three_levels["root"]))
    assert response.status_code == 200
    assert tree_rows(response) == [
        (1, phone["a"]),
        (2, phone["a1"]),
        (3, phone["a1x"]),
        (2, phone["a2"]),
        (1, phone["b"]),
    ]
    html = response.content.decode()
    assert "5 in the whole tree" in html
    assert "not shown" not in html
    chain = re.search(r'<ol class="invite-chain">(.*?)</ol>', html, re.S).group(1)
    assert phone["top"] in chain and phone["root"] in chain


def test_invite_tree_is_one_query_each_way_and_says_how_many_it_left_out(three_levels, django_assert_num_queries):
    with django_assert_num_queries(1):
        tree = get_invite_tree(user_id=three_levels["root"].pk, limit=3)
    # Nearest levels first: both depth-1 invitees, then the first depth-2 one under its inviter.
    assert [(m.depth, m.phone) for m in tree.members] == [
        (1, three_levels["a"].phone),
        (2, three_levels["a1"].phone),
        (1, three_levels["b"].phone),
    ]
    assert (tree.total, tree.not_shown) == (5, 2)
    with django_assert_num_queries(1):
        chain = get_invite_chain(user_id=three_levels["a1x"].pk)
    assert [(m.depth, m.phone) for m in chain] == [
        (4, three_levels["top"].phone),
        (3, three_levels["root"].phone),
        (2, three_levels["a"].phone),
        (1, three_levels["a1"].phone),
    ]
    assert chain[0].activated_at is None and chain[1].activated_at <= timezone.now()
    nearest = get_invite_chain(user_id=three_levels["a1x"].pk, limit=2)
    assert [m.phone for m in nearest] == [three_levels["a"].phone, three_levels["a1"].phone]


def test_invite_tree_page_says_how_many_are_not_shown(admin_client, three_levels, monkeypatch):
    monkeypatch.setattr(admin.site.get_model_admin(User), "invite_tree_limit", 2)
    response = admin_client.get(tree_url(three_levels["root"]))
    assert len(tree_rows(response)) == 2
    assert "3 more invitees are not shown" in response.content.decode()


def test_invite_tree_of_a_user_nobody_invited(admin_client, make_user):
    user = make_user("+79110000001")
    html = admin_client.get(tree_url(user)).content.decode()
    assert "0 in the whole tree" in html
    assert "has not activated an invite code" in html


def test_invite_tree_of_a_user_whose_inviter_was_deleted(admin_client, make_user):
    inviter, user = make_user("+79110000001"), make_user("+79110000002")
    invite(user, by=inviter)
    inviter.delete()

    html = admin_client.get(tree_url(user)).content.decode()

    assert "belonged to an account that no longer exists" in html
    assert "has not activated an invite code" not in html


def test_invite_tree_is_for_staff_only(make_user, three_levels):
    url = tree_url(three_levels["root"])
    assert Client().get(url).status_code == 302
    client = Client()
    client.force_login(make_user("+79000000002"))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    staff_without_permissions = Client()
    staff_without_permissions.force_login(make_user("+79000000003", is_staff=True))
    assert staff_without_permissions.get(url).status_code == 403


def test_invite_tree_of_an_unknown_user_is_404(admin_client):
    assert admin_client.get("/admin/accounts/user/999999/invite-tree/").status_code == 404


def test_add_form_normalizes_the_phone_and_the_new_user_gets_an_invite_code(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "phone": "8 911 000 00 00",
            "usable_password": "true",
            "password1": "x7-Kq!vLm2#p",
            "password2": "x7-Kq!vLm2#p",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(phone="+79110000000")
    assert user.check_password("x7-Kq!vLm2#p")
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{6}", code_of(user))


def test_add_form_creates_sms_only_users_without_a_password(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"), {"phone": "+7 (911) 000-00-01", "usable_password": "false"}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(phone="+79110000001")
    assert not user.has_usable_password()
    assert Referral.objects.filter(user=user).exists()


@pytest.mark.parametrize("phone", ["12", "not a phone"])
def test_add_form_refuses_invalid_phones(admin_client, phone):
    response = admin_client.post(reverse("admin:accounts_user_add"), {"phone": phone, "usable_password": "false"})
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    assert not User.objects.filter(is_superuser=False).exists()


def test_add_form_refuses_a_phone_already_taken_in_another_spelling(admin_client, make_user):
    make_user("+79110000000")
    response = admin_client.post(
        reverse("admin:accounts_user_add"), {"phone": "8 911 000 00 00", "usable_password": "false"}
    )
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors


def test_admin_login_accepts_the_phone_in_any_usual_form(make_user):
    staff = make_user("+79000000009", is_staff=True)
    staff.set_password("a-long-admin-password")
    staff.save()
    client = Client()

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "8 900 000-00-09", "password": "a-long-admin-password"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_createsuperuser_refuses_an_existing_phone_written_another_way(make_user, monkeypatch):
    from django.core.management import CommandError, call_command

    make_user("+79000000007")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password")

    with pytest.raises(CommandError, match="already taken"):
        call_command("createsuperuser", "--noinput", phone="8 900 000-00-07", verbosity=0)


def test_staff_can_lift_a_phones_lock_by_deleting_its_refused_checks(admin_client, api):
    from accounts.models import CheckFailure

    CheckFailure.objects.bulk_create([CheckFailure(phone="+79110000001") for _ in range(10)])
    assert api.post("/api/v1/auth/token/", {"phone": "+79110000001", "code": "1234"}, format="json").status_code == 429
    listing = admin_client.get("/admin/accounts/checkfailure/?q=%2B79110000001")
    assert listing.status_code == 200
    assert listing.content.decode().count("+79110000001") >= 10
    ids = [str(pk) for pk in CheckFailure.objects.values_list("pk", flat=True)]

    admin_client.post(
        "/admin/accounts/checkfailure/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert not CheckFailure.objects.exists()
    assert api.post("/api/v1/auth/token/", {"phone": "+79110000001", "code": "1234"}, format="json").status_code == 400


def test_sign_in_records_cannot_be_added_or_edited(admin_client):
    assert admin_client.get("/admin/accounts/checkfailure/add/").status_code == 403
    assert admin_client.get("/admin/accounts/codesend/add/").status_code == 403


@pytest.fixture
def token_viewer(make_user):
    """A staff member who may only view the issued refresh tokens, and one user's refresh token."""
    staff = make_user("+79000000002", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_outstandingtoken"))
    client = Client()
    client.force_login(staff)
    return client, issue_tokens(user=make_user("+79110000001"))["refresh"]


def test_refresh_tokens_are_listed_without_the_token_itself(token_viewer):
    client, refresh = token_viewer
    outstanding = OutstandingToken.objects.get()

    listing = client.get("/admin/token_blacklist/outstandingtoken/")
    page = client.get(f"/admin/token_blacklist/outstandingtoken/{outstanding.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert outstanding.jti in page.content.decode()
    for response in (listing, page):
        assert refresh not in response.content.decode()
        assert refresh.split(".")[1] not in response.content.decode()  # nor its claims


def test_refresh_tokens_cannot_be_filtered_by_the_token_text(token_viewer):
    # Else ?token__startswith= would give it away a character at a time to view permission.
    client, refresh = token_viewer

    for lookup in ("token__startswith", "token", "token__contains", "token__regex"):
        response = client.get("/admin/token_blacklist/outstandingtoken/", {lookup: refresh[:40]})
        assert response.status_code == 400, lookup


@pytest.mark.parametrize(
    "url", ["/admin/token_blacklist/outstandingtoken/", "/admin/token_blacklist/blacklistedtoken/"]
)
@pytest.mark.parametrize("written", ["+79110000001", "8 (911) 000-00-01"])
def test_token_pages_find_a_user_s_tokens_by_phone(admin_client, make_user, url, written):
    for phone in ("+79110000001", "+79110000002"):
        issue_tokens(user=make_user(phone))
    for outstanding in OutstandingToken.objects.all():
        BlacklistedToken.objects.create(token=outstanding)

    html = admin_client.get(url, {"q": written}).content.decode()

    assert re.findall(r'class="field-token_user">([^<]*)<', html) == ["+79110000001"]
    by_id = admin_client.get(url, {"q": str(User.objects.get(phone="+79110000001").pk)}).content.decode()
    assert "+79110000001" in re.findall(r'class="field-token_user">([^<]*)<', by_id)
    assert admin_client.get(url, {"q": "no such user"}).status_code == 200


def test_the_password_page_is_in_the_admins_language(admin_client, make_user):
    user = make_user("+79110000001", password="long-enough-password-1")

    html = admin_client.get(f"/admin/accounts/user/{user.pk}/password/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "Может ли пользователь аутентифироваться по паролю" in html
    assert "Если её выключить, текущий пароль пользователя будет утерян." in html
    assert "Whether the user" not in html and "will be lost" not in html


def test_token_pages_are_in_the_admins_language(admin_client, make_user):
    issue_tokens(user=make_user("+79110000001"))
    outstanding = OutstandingToken.objects.get()
    BlacklistedToken.objects.create(token=outstanding)

    blacklisted = BlacklistedToken.objects.get()
    pages = [
        admin_client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
        for url in (
            "/admin/token_blacklist/outstandingtoken/",
            f"/admin/token_blacklist/outstandingtoken/{outstanding.pk}/change/",
            "/admin/token_blacklist/blacklistedtoken/",
            f"/admin/token_blacklist/blacklistedtoken/{blacklisted.pk}/change/",
        )
    ]

    assert "Идентификатор токена" in pages[0] and "Действует до" in pages[1]
    assert "Идентификатор токена" in pages[2] and "Отозван" in pages[3]
    for page in pages:
        assert not re.search(r">\s*(Jti|Token|User|Created at|Expires at|Blacklisted at|Id):?\s*<", page)


def test_revoked_tokens_cannot_be_unrevoked_in_the_admin(admin_client, make_user, api):
    refresh = issue_tokens(user=make_user("+79110000001"))["refresh"]
    assert api.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json").status_code == 204
    blacklisted = BlacklistedToken.objects.get()
    page = f"/admin/token_blacklist/blacklistedtoken/{blacklisted.pk}"

    edits = [
        admin_client.post(f"{page}/change/", {"token": blacklisted.token_id}),
        admin_client.post(f"{page}/delete/", {"post": "yes"}),
        admin_client.post("/admin/token_blacklist/blacklistedtoken/add/", {"token": blacklisted.token_id}),
    ]

    assert [edit.status_code for edit in edits] == [403, 403, 403]
    assert BlacklistedToken.objects.filter(pk=blacklisted.pk).exists()
    assert api.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 401


def test_admin_sign_in_with_its_redis_down_is_a_503_not_a_500(make_user, settings):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REDIS_URL = url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.raise_request_exception = False

    response = client.post("/admin/login/", {"username": "+79110000000", "password": "x"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_admin_sign_in_with_its_redis_refusing_writes_is_a_503_not_a_500(make_user, redis_refusing_writes):
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.raise_request_exception = False

    response = client.post("/admin/login/", {"username": "+79110000000", "password": "x"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_refresh_token_page_refuses_a_popup_naming_a_reverse_relation(admin_client):
    response = admin_client.get(
        "/admin/token_blacklist/outstandingtoken/", {"_to_field": "blacklistedtoken", "_popup": "1"}
    )

    assert response.status_code == 400


def test_the_admin_password_form_is_limited_per_ip(make_user, settings):
    settings.AUTH_IP_RATE = "3/minute"
    make_user("+79110000000", password="a-long-staff-password", is_staff=True)
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_ACCEPT_LANGUAGE="ru")
    wrong = {"username": "+79110000000", "password": "guess"}
    room_in_the_rate_window(10)  # each try hashes a password

    statuses = [client.post("/admin/login/", wrong).status_code for _ in range(3)]
    refused = client.post("/admin/login/", {**wrong, "password": "a-long-staff-password"})

    assert statuses == [200, 200, 200]  # the form again, with its error
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.content.decode().startswith("Слишком много запросов. Повторите попытку через ")
    assert client.get("/admin/login/").status_code == 200  # the form itself is not counted
    other = Client(REMOTE_ADDR="203.0.113.8")
    assert other.post("/admin/login/", {**wrong, "password": "a-long-staff-password"}).status_code == 302
