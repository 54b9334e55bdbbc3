"""Two staff members at once: admin writes that PostgreSQL fails as a deadlock are taken again."""

import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.db.models.signals import post_delete
from django.test import Client
from django.urls import reverse

from accounts.models import User
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.conftest import wait_until_a_query_waits_on_a_lock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def staff_client(user):
    client = Client()
    client.force_login(user)
    return client


def in_a_thread(work, *, deadlock_timeout="1s"):
    """work() on a connection of its own whose deadlock check waits `deadlock_timeout`: the side
    with the shorter one finds the cycle, and PostgreSQL fails that side."""
    outcome = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('deadlock_timeout', %s, false)", [deadlock_timeout])
            outcome["response"] = work()
        except Exception as exc:  # handed to the test, which fails on it
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


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
@pytest.mark.parametrize("failed", ["change", "deletion"])
def test_a_phone_changed_while_another_admin_deletes_the_user(make_user, delete, failed):
    # The deletion locks the user's referral row, then the inviter's (to uncount them), then the
    # user's row; the phone change locks the user's row, then the inviter's referral row (to
    # rebuild the newest invitees' phones). Whichever side PostgreSQL fails is taken again.
    inviter, user = make_user(), make_user("+79110000002")
    activate_invite_code(user=user, code=Referral.objects.get(user=inviter).invite_code)
    deleter = staff_client(make_user("+79000000001", is_staff=True, is_superuser=True))
    changer = staff_client(make_user("+79000000002", is_staff=True, is_superuser=True))
    url = reverse("admin:accounts_user_change", args=[user.pk])
    referral_deleted = threading.Event()
    receiver = rows_deleted_then_wait_for(referral_deleted)
    post_delete.connect(receiver, sender=Referral, dispatch_uid="tests.admin_races")
    try:
        deleting = in_a_thread(
            lambda: delete(deleter, user),
            deadlock_timeout="100ms" if failed == "deletion" else "30s",
        )
        assert referral_deleted.wait(10)
        changing = in_a_thread(
            lambda: changer.post(url, {"phone": "+7 911 000 00 77", "is_active": "on"}),
            deadlock_timeout="100ms" if failed == "change" else "30s",
        )
        for thread, _outcome in (deleting, changing):
            thread.join(20)
    finally:
        post_delete.disconnect(sender=Referral, dispatch_uid="tests.admin_races")

    deleted, changed = deleting[1], changing[1]
    assert "error" not in deleted and "error" not in changed, (deleted, changed)
    assert deleted["response"].status_code == 302
    assert changed["response"].status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert Referral.objects.get(pk=inviter.pk).invitees_count == 0
    if failed == "change":
        # Taken again after the deletion committed: the user is gone, as the admin says.
        assert said_the_user_is_gone(changed["response"])


def test_a_change_saved_while_the_user_is_deleted_does_not_bring_them_back(make_user):
    user = make_user("+79110000002")
    changer = staff_client(make_user("+79000000002", is_staff=True, is_superuser=True))
    url = reverse("admin:accounts_user_change", args=[user.pk])

    with transaction.atomic():  # the deletion, still to commit when the change reads the user
        User.objects.get(pk=user.pk).delete()
        changing = in_a_thread(lambda: changer.post(url, {"phone": "+7 911 000 00 77", "is_active": "on"}))
        wait_until_a_query_waits_on_a_lock()
    changing[0].join(20)

    changed = changing[1]
    assert "error" not in changed, changed
    assert said_the_user_is_gone(changed["response"])
    assert not User.objects.filter(pk=user.pk).exists()
    assert not User.objects.filter(phone="+79110000077").exists()
