"""Two staff members at once: admin writes that PostgreSQL fails as a deadlock are taken again."""

import threading

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.messages import get_messages
from django.db import transaction
from django.db.models.signals import post_delete
from django.test import Client
from django.urls import reverse

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from referrals.admin import UserAdmin
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.conftest import in_a_thread, wait_until_a_query_waits_on_a_lock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def staff_client(user):
    client = Client()
    client.force_login(user)
    return client


def rows_deleted_then_wait_for(waiting_started):
    """A post_delete receiver for referral rows: the deletion, holding them and the inviter's row
    (uncounted), waits until another session waits for a lock, and only then deletes the user."""

    def receiver(sender, instance, **kwargs):
        if not waiting_started.is_set():
            waiting_started.set()
            wait_until_a_query_waits_on_a_lock()

    return receiver


def said_the_user_is_gone(response):
    """The change view's answer when the user it was asked to change does not exist."""
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    return response["Location"] == reverse("admin:index") and any("Perhaps it was deleted?" in m for m in messages)


def delete_on_its_page(client, user):
    return client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})


def delete_from_the_list(client, user):
    data = {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"}
    return client.post(reverse("admin:accounts_user_changelist"), data)


@pytest.mark.parametrize("delete", [delete_on_its_page, delete_from_the_list])
def test_a_phone_change_waits_for_another_admins_deletion_of_the_user(make_user, delete):
    # The deletion locks the user's row first, then the referral rows (the user's, the inviter's to
    # uncount them); the phone change locks the user's row, then the inviter's referral row (to
    # rebuild the newest invitees' phones). So the change waits, and finds the user gone; when the
    # deletion took the user's row last, the two deadlocked (PostgreSQL failed one, taken again).
    inviter, user = make_user(), make_user("+79110000002")
    activate_invite_code(user=user, code=Referral.objects.get(user=inviter).invite_code)
    deleter = staff_client(make_user("+79000000001", is_staff=True, is_superuser=True))
    changer = staff_client(make_user("+79000000002", is_staff=True, is_superuser=True))
    url = reverse("admin:accounts_user_change", args=[user.pk])
    referral_deleted = threading.Event()
    receiver = rows_deleted_then_wait_for(referral_deleted)
    post_delete.connect(receiver, sender=Referral, dispatch_uid="tests.admin_races")
    try:
        # Were they to deadlock, PostgreSQL would fail the change, which the admin takes again.
        deleting = in_a_thread(lambda: delete(deleter, user), deadlock_timeout="30s")
        assert referral_deleted.wait(10)
        changing = in_a_thread(
            lambda: changer.post(url, {"phone": "+7 911 000 00 77", "is_active": "on"}),
            deadlock_timeout="1s",
        )
        for thread, _outcome in (deleting, changing):
            thread.join(60)
    finally:
        post_delete.disconnect(sender=Referral, dispatch_uid="tests.admin_races")

    deleted, changed = deleting[1], changing[1]
    assert "error" not in deleted and "error" not in changed, (deleted, changed)
    assert deleted["response"].status_code == 302
    assert changed["response"].status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert Referral.objects.get(pk=inviter.pk).invitees_count == 0
    assert LogEntry.objects.filter(object_id=str(user.pk), action_flag=DELETION).count() == 1
    assert said_the_user_is_gone(changed["response"])


NEW_PASSWORD = "a-long-new-staff-password"


@pytest.mark.parametrize(
    ("page", "data", "gone"),
    [
        ("admin:accounts_user_change", {"phone": "+7 911 000 00 77", "is_active": "on"}, said_the_user_is_gone),
        (
            "admin:auth_user_password_change",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
            lambda response: response.status_code == 404,
        ),
    ],
)
def test_a_user_saved_while_being_deleted_does_not_come_back(make_user, page, data, gone):
    user = make_user("+79110000002")
    changer = staff_client(make_user("+79000000002", is_staff=True, is_superuser=True))

    with transaction.atomic():  # the deletion, still to commit when the page reads the user
        User.objects.get(pk=user.pk).delete()
        changing = in_a_thread(lambda: changer.post(reverse(page, args=[user.pk]), data))
        wait_until_a_query_waits_on_a_lock()
    changing[0].join(20)

    changed = changing[1]
    assert "error" not in changed, changed
    assert gone(changed["response"])
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Referral.objects.filter(pk=user.pk).exists()


def test_a_change_failed_at_commit_says_it_was_saved_once(make_user, monkeypatch):
    # Staff member S changes V's phone while X changes S's: V and S share an inviter. S's COMMIT
    # checks its log entry's key, S's own user row, which X holds while X waits for the inviter's
    # referral row, which S holds: PostgreSQL fails S at COMMIT, after its success message.
    inviter, invitee = make_user(), make_user("+79110000002")
    s = make_user("+79000000001", is_staff=True, is_superuser=True)
    x = make_user("+79000000009", is_staff=True, is_superuser=True)
    for user in (s, invitee):
        activate_invite_code(user=user, code=Referral.objects.get(user=inviter).invite_code)
    answered = threading.Event()
    response_change = UserAdmin.response_change

    def answer_then_wait(self, request, obj):
        response = response_change(self, request, obj)
        if not answered.is_set():
            answered.set()
            wait_until_a_query_waits_on_a_lock()  # X, for the inviter's referral row
        return response

    monkeypatch.setattr(UserAdmin, "response_change", answer_then_wait)
    changing_invitee = in_a_thread(
        lambda: staff_client(s).post(
            reverse("admin:accounts_user_change", args=[invitee.pk]), {"phone": "+7 911 000 00 77", "is_active": "on"}
        )
    )
    assert answered.wait(10)
    changing_s = in_a_thread(
        lambda: staff_client(x).post(
            reverse("admin:accounts_user_change", args=[s.pk]),
            {"phone": "+7 900 000 00 55", "is_active": "on", "is_staff": "on", "is_superuser": "on"},
        ),
        deadlock_timeout="30s",
    )
    for thread, _outcome in (changing_invitee, changing_s):
        thread.join(60)

    assert "error" not in changing_invitee[1] and "error" not in changing_s[1]
    response = changing_invitee[1]["response"]
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert len(messages) == 1 and "was changed successfully" in messages[0], messages
    assert User.objects.get(pk=invitee.pk).phone == "+79110000077"
    assert LogEntry.objects.filter(object_id=str(invitee.pk), action_flag=CHANGE).count() == 1


def test_a_deletion_from_the_list_that_fails_leaves_no_log_of_it(make_user, monkeypatch):
    user = make_user("+79110000002")
    deleter = staff_client(make_user("+79000000001", is_staff=True, is_superuser=True))
    deleter.raise_request_exception = False

    def fail(self, request, queryset):
        raise RuntimeError("the deletion failed")

    monkeypatch.setattr(AccountsUserAdmin, "delete_queryset", fail)

    assert delete_from_the_list(deleter, user).status_code == 500
    assert User.objects.filter(pk=user.pk).exists()
    assert not LogEntry.objects.filter(object_id=str(user.pk), action_flag=DELETION).exists()
