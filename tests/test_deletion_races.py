"""A staff member deletes an account while its person signs in or refreshes: neither side fails.

Every sign-in and refresh records a refresh token against the user (SimpleJWT's outstanding
tokens). Django's deletion clears the user's records it has read before it deletes the user, so
a record committed in between was left pointing at no one, and the deletion failed at its
commit; a sign-in that read the user before the deletion and committed after it failed too.
"""

import threading

import pytest
from django.db.models.signals import post_delete, pre_delete
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services, tokens
from accounts.models import User
from project.deadlocks import is_deadlock
from referrals import services as referral_services
from referrals.models import Referral
from tests.conftest import in_a_thread, on_delete_actions, wait_until_a_query_waits_on_a_lock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

PHONE = "+79990000003"
SIGN_IN = {"phone": PHONE, "code": "1234"}
TOKEN_URL, REFRESH_URL = "/api/v1/auth/token/", "/api/v1/auth/token/refresh/"
INVITE_URL = "/api/v1/me/invite/"


@pytest.fixture(autouse=True)
def test_phone(settings):
    settings.OTP_TEST_PHONES = {PHONE: "1234"}  # a fixed code: the sign-in needs no SMS


def jti_of(refresh: str) -> str:
    return RefreshToken(refresh, verify=False)["jti"]


def signed_in() -> dict:
    response = APIClient().post(TOKEN_URL, SIGN_IN, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def started(work, *, deadlock_timeout="1s"):
    """work() begun on a connection of its own; call what this returns for its result."""
    thread, outcome = in_a_thread(work, deadlock_timeout=deadlock_timeout)

    def result():
        thread.join(30)
        assert not thread.is_alive(), "still waiting after 30 s"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    return result


def delete_in_the_admin(user_id: int, *, from_the_list: bool = False):
    staff = User.objects.create_user("+79000000001", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    if from_the_list:
        data = {"action": "delete_selected", "_selected_action": [user_id], "post": "yes"}
        return client.post(reverse("admin:accounts_user_changelist"), data)
    return client.post(reverse("admin:accounts_user_delete", args=[user_id]), {"post": "yes"})


@pytest.mark.parametrize("from_the_list", [False, True], ids=["its page", "the list"])
def test_a_sign_in_during_a_deletion_waits_for_it_and_creates_a_new_account(from_the_list):
    # The deletion has read and cleared the user's records and deleted the referral row, not yet
    # the user, when the sign-in comes: it waits (the deletion locked the user's row before reading
    # anything), so it cannot record a token the deletion has not seen.
    user_id = signed_in()["user"]["id"]
    signing_in = []

    def meanwhile(sender, instance, **kwargs):
        if instance.user_id == user_id and not signing_in:
            signing_in.append(started(lambda: APIClient().post(TOKEN_URL, SIGN_IN, format="json")))
            wait_until_a_query_waits_on_a_lock()

    post_delete.connect(meanwhile, sender=Referral, dispatch_uid="tests.deletion_races")
    try:
        deletion = delete_in_the_admin(user_id, from_the_list=from_the_list)
    finally:
        post_delete.disconnect(sender=Referral, dispatch_uid="tests.deletion_races")

    assert deletion.status_code == 302
    assert_signed_in_anew(signing_in[0](), user_id)


def test_an_activation_during_the_deletion_of_its_user_waits_for_it(monkeypatch, make_user):
    # The deletion holds the user's row and has not yet deleted the referral row when the user
    # activates a code. The activation's trigger reads its user FOR SHARE: taken after the referral
    # row, against the deletion's order, the two deadlocked (PostgreSQL failed the activation).
    account = signed_in()
    inviter_code = Referral.objects.get(user=make_user()).invite_code
    deadlocks = []
    monkeypatch.setattr(referral_services, "is_deadlock", lambda exc: deadlocks.append(exc) or is_deadlock(exc))
    activating = []

    def meanwhile(sender, instance, **kwargs):
        if instance.user_id == account["user"]["id"] and not activating:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {account['access']}")
            activating.append(started(lambda: client.post(INVITE_URL, {"invite_code": inviter_code}, format="json")))
            wait_until_a_query_waits_on_a_lock()

    pre_delete.connect(meanwhile, sender=Referral, dispatch_uid="tests.deletion_races")
    try:
        deletion = started(lambda: delete_in_the_admin(account["user"]["id"]), deadlock_timeout="30s")()
    finally:
        pre_delete.disconnect(sender=Referral, dispatch_uid="tests.deletion_races")

    assert deletion.status_code == 302
    assert activating[0]().status_code == 401  # the user is gone
    assert deadlocks == []


def test_a_refresh_recorded_while_the_admin_deletes_its_user(monkeypatch):
    # The refresh holds its old token's record, which the deletion waits for to clear it, and
    # records a new one; the deletion goes on once the refresh has committed.
    refresh_token = signed_in()["refresh"]
    user_id = User.objects.get(phone=PHONE).pk
    recording = threading.Event()
    issue_tokens = tokens.issue_tokens

    def after_the_deletion_waits(*, user):
        recording.set()
        wait_until_a_query_waits_on_a_lock()
        return issue_tokens(user=user)

    monkeypatch.setattr(tokens, "issue_tokens", after_the_deletion_waits)
    refreshing = started(lambda: APIClient().post(REFRESH_URL, {"refresh": refresh_token}, format="json"))
    assert recording.wait(10)
    # Were the two to deadlock, PostgreSQL would fail the refresh (the admin would delete again).
    deleting = started(lambda: delete_in_the_admin(user_id), deadlock_timeout="30s")
    reply, deletion = refreshing(), deleting()

    assert reply.status_code == 200, reply.content
    assert_deleted_and_unrecorded(deletion, user_id, reply.json()["refresh"])


def assert_deleted_and_unrecorded(deletion, user_id: int, new_refresh: str) -> None:
    assert deletion.status_code == 302
    assert not User.objects.filter(pk=user_id).exists()
    assert OutstandingToken.objects.filter(user_id=user_id).count() == 0
    assert OutstandingToken.objects.filter(jti=jti_of(new_refresh), user=None).count() == 1  # kept, as the others
    refused = APIClient().post(REFRESH_URL, {"refresh": new_refresh}, format="json")
    assert refused.status_code == 401


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "atomic"])
def test_a_deletion_waits_for_a_sign_in_that_read_the_account(settings, monkeypatch, batched):
    # The sign-in has read the account when the admin deletes it: the deletion waits until the
    # sign-in has committed, then clears its new record with the others.
    settings.DATABASE_PREPARED_STATEMENTS = batched
    user_id = signed_in()["user"]["id"]
    issue_tokens = services.issue_tokens

    def after_the_deletion_waits(*, user):
        deleting.append(started(lambda: delete_in_the_admin(user.pk)))
        wait_until_a_query_waits_on_a_lock()
        return issue_tokens(user=user)

    deleting = []
    monkeypatch.setattr(services, "issue_tokens", after_the_deletion_waits)
    reply = APIClient().post(TOKEN_URL, SIGN_IN, format="json")

    assert reply.status_code == 200, reply.content
    assert reply.json()["created"] is False
    assert_deleted_and_unrecorded(deleting[0](), user_id, reply.json()["refresh"])


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "atomic"])
def test_a_sign_in_that_meets_a_deletion_waits_and_creates_a_new_account(settings, batched):
    # The admin has deleted the user's row and not yet committed when the sign-in reads the
    # account: it waits, finds no account, and creates one, as a sign-in just after would.
    settings.DATABASE_PREPARED_STATEMENTS = batched
    user_id = signed_in()["user"]["id"]
    signing_in = []

    def meanwhile(sender, instance, **kwargs):
        if instance.pk == user_id:
            signing_in.append(started(lambda: APIClient().post(TOKEN_URL, SIGN_IN, format="json")))
            wait_until_a_query_waits_on_a_lock()

    post_delete.connect(meanwhile, sender=User, dispatch_uid="tests.deletion_races")
    try:
        deletion = delete_in_the_admin(user_id)
    finally:
        post_delete.disconnect(sender=User, dispatch_uid="tests.deletion_races")
    reply = signing_in[0]()

    assert deletion.status_code == 302
    assert_signed_in_anew(reply, user_id)


def assert_signed_in_anew(reply, deleted_id: int) -> None:
    assert reply.status_code == 200, reply.content
    assert reply.json()["created"] is True
    new_id = reply.json()["user"]["id"]
    assert new_id != deleted_id
    assert list(User.objects.filter(phone=PHONE).values_list("pk", flat=True)) == [new_id]
    assert OutstandingToken.objects.filter(jti=jti_of(reply.json()["refresh"]), user_id=new_id).count() == 1


def test_the_database_clears_a_deleted_users_records_itself():
    # A later AlterField of SimpleJWT's key would recreate it without its action (migration accounts/0007).
    assert on_delete_actions("token_blacklist_outstandingtoken", "accounts_user") == ["n"]  # ON DELETE SET NULL
