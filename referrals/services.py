"""Writes of the referrals app: giving codes to new users, activating someone's code."""

from contextlib import suppress

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.exceptions import AccountDisabled
from accounts.models import User
from accounts.row_locks import lock_user_row
from project.deadlocks import is_deadlock
from project.prepared_statements import fetch_prepared
from referrals.exceptions import (
    ActivationContended,
    InviteCodeAlreadyActivated,
    InviteCodeNotFound,
    InviteCycle,
    OwnInviteCode,
)
from referrals.invite_codes import generate_invite_code, looks_like_invite_code, normalize_invite_code
from referrals.models import Referral

CODE_ATTEMPTS = 10
# An attempt starts over only when another activation in the same tree committed meanwhile (the
# inviter's root was invited), so N activations racing in one tree need at most N attempts; with 5,
# an 8-user ring raced in CI now and then answered one of them activation_conflict.
ACTIVATION_ATTEMPTS = 10


def create_referral(*, user: User) -> Referral:
    """A unique invite code for a new user, drawn again on the rare collision."""
    for _attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():  # a savepoint: a collision must not poison the caller's transaction
                return Referral.objects.create(user=user, invite_code=generate_invite_code())
        except IntegrityError:
            if Referral.objects.filter(user=user).exists():
                raise
    raise RuntimeError("Could not draw a free invite code; the code space is nearly full.")


def give_missing_invite_code(*, user_id: int) -> bool:
    """Give a code to a user created without post_save (bulk_create, loaddata of users alone), who
    could otherwise neither sign in nor invite. False when there is no such user."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return False
    with suppress(IntegrityError):  # a simultaneous request gave it first
        create_referral(user=user)
    return True


# The user's inviter and whether they may act, with the code's owner: one unlocked read, enough
# to answer a retry. Hand-written: the ORM took longer to build it (with its subquery) than to run it.
OWN_ACTIVATION_SQL = """
SELECT r.invited_by_id, u.is_active, (SELECT c.user_id FROM referrals_referral c WHERE c.invite_code = $2),
       r.activated_at IS NOT NULL
FROM referrals_referral r JOIN accounts_user u ON u.id = r.user_id
WHERE r.user_id = $1
"""


def activate_invite_code(*, user: User, code: str) -> None:
    """Link `user` to the owner of `code`: once, never their own, never a cycle, even when raced."""
    code = normalize_invite_code(code)
    # A text no code could be matches no one, but is answered like any other code nobody has: after
    # the account's state and its activation, which a client must hear about first.
    params = [user.pk, code if looks_like_invite_code(code) else None]
    own = fetch_prepared("referrals_own_activation", OWN_ACTIVATION_SQL, params, many=False)
    if own is None and give_missing_invite_code(user_id=user.pk):
        own = fetch_prepared("referrals_own_activation", OWN_ACTIVATION_SQL, params, many=False)
    if own is None:
        raise InvalidToken(_("User not found"))
    if not own[1]:
        raise AccountDisabled()
    invited_by_id, _active, inviter_id, activated = own
    if activated and (inviter_id is None or inviter_id != invited_by_id):
        # Before saying whether the code exists: else one activation buys an oracle for every code,
        # around the per-IP limit of the public preview.
        raise InviteCodeAlreadyActivated()
    if inviter_id is None:
        raise InviteCodeNotFound()
    if invited_by_id == inviter_id:
        return  # the same code again: an inviter, once set, never changes, so no lock is needed
    for _attempt in range(ACTIVATION_ATTEMPTS):
        try:
            if _activate(user_id=user.pk, inviter_id=inviter_id):
                return
        except OperationalError as exc:
            # Inside a caller's transaction the locks that deadlocked are still held: give up.
            if not is_deadlock(exc) or connection.in_atomic_block:
                raise
            # Deleting a user in the same tree locks that user's row before their inviter's,
            # against this primary-key order, and PostgreSQL failed this side: it rolled back whole.
    raise ActivationContended()


@transaction.atomic
def _activate(*, user_id: int, inviter_id: int) -> bool:
    """True when the activation stands (new or a retry); False when the inviter's root moved."""
    # Why this is race-free: a cycle closes exactly when the root of the inviter's tree
    # is the user (the user has no inviter yet, so is a root). Only roots ever change
    # (an activation gives a root its inviter; inviters never change after), so once the
    # user, the inviter and the inviter's root are locked, and the root is re-read under
    # the lock, nothing this check relies on can move before commit. Two activations
    # that together would close a loop each lock the other's user as their root, so
    # they run one after the other and the second sees the first. Rows are locked in
    # primary-key order, so activations cannot deadlock each other (a deletion can: see
    # activate_invite_code). On SQLite every write transaction is IMMEDIATE: they simply run
    # one at a time.
    # The lock the activation's trigger takes on the user's row (referrals/0009), taken before the
    # referral rows: the admin's deletion locks the user's row, then the referral rows, and the
    # other order deadlocked with it.
    lock_user_row(user_id, mode="SHARE")
    root_id = _root_of(inviter_id)
    rows = Referral.objects.select_for_update().filter(pk__in={user_id, inviter_id, root_id}).order_by("pk")
    locked = {row.pk: row for row in rows}
    if user_id not in locked:
        raise InvalidToken(_("User not found"))  # deleted while its access token still lives
    if inviter_id not in locked:
        raise InviteCodeNotFound()
    referral = locked[user_id]
    if referral.invited_by_id == inviter_id:
        return True  # the same code again: an idempotent retry
    if referral.activated_at is not None:
        raise InviteCodeAlreadyActivated()
    if inviter_id == user_id:
        raise OwnInviteCode()
    if _root_of(inviter_id) != root_id:
        transaction.set_rollback(True)
        return False  # that root was itself invited meanwhile: lock the new root instead
    if root_id == user_id:
        raise InviteCycle()
    referral.invited_by_id, referral.activated_at = inviter_id, timezone.now()
    # The inviter's count follows in the database (migration 0008), under the lock taken above.
    referral.save(update_fields=["invited_by", "activated_at"])
    return True


ROOT_QUERY = """
WITH RECURSIVE chain (user_id, invited_by_id, depth) AS (
    SELECT user_id, invited_by_id, 0 FROM referrals_referral WHERE user_id = %s
    UNION ALL
    SELECT r.user_id, r.invited_by_id, c.depth + 1
    FROM referrals_referral r JOIN chain c ON r.user_id = c.invited_by_id
    WHERE c.depth < 1000000
)
SELECT user_id FROM chain WHERE invited_by_id IS NULL
"""


def _root_of(user_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(ROOT_QUERY, [user_id])
        row = cursor.fetchone()
    if row is None:
        raise InviteCodeNotFound()  # the code's owner was deleted a moment ago
    return row[0]
