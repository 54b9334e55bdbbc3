"""Building and reading invite forests for tests: bulk rows, as a loaded production database would have."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from referrals.models import Referral


def make_invitees(inviter: User, count: int, *, phone_prefix: str = "+7912") -> None:
    """`count` users who activated `inviter`'s code, inserted in bulk (100k in seconds); the database counts them."""
    now = timezone.now()
    letter = "QRSTUVWXYK"[int(phone_prefix[-1])]  # one code series per phone series, so batches never collide
    users = User.objects.bulk_create(
        [User(phone=f"{phone_prefix}{i:07d}", password="!") for i in range(count)], batch_size=5000
    )
    Referral.objects.bulk_create(
        [
            Referral(
                user=user,
                invite_code=f"{letter}{i:05d}".translate(str.maketrans("01", "ZX")),
                invited_by_id=inviter.pk,
                activated_at=now - timedelta(seconds=count - i),
            )
            for i, user in enumerate(users)
        ],
        batch_size=5000,
    )


def inviter_map() -> dict[int, int | None]:
    return dict(Referral.objects.values_list("user_id", "invited_by_id"))


def assert_forest(parents: dict[int, int | None]) -> None:
    """Every chain of inviters ends at a root: no user is their own ancestor."""
    for start in parents:
        seen, node = set(), start
        while node is not None:
            assert node not in seen, f"cycle through user {node}"
            seen.add(node)
            node = parents[node]
