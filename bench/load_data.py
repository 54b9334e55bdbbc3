"""Fill an empty, migrated database with the benchmark's data set, in bulk.

    python -m bench.load_data --users 10000 --invitees 100000 --test-phones 20

Base users 0..test_phones-1 have the phones +7999000NNNN (sign-in test phones):
user 0 has `invitees` invitees (extra users with distinct activated_at), user 1 has
activated user 2's code (the idempotent-retry case); the others are plain users.
"""

import argparse
import os
import random
from datetime import timedelta

import django

BATCH = 5000
UNUSABLE_PASSWORD = "!bench"  # noqa: S105  (Django's "!" prefix: unusable, as for every phone user)


def test_phone(index: int) -> str:
    return f"+7999000{index:04d}"


def invite_codes(count: int, *, seed: int) -> list[str]:
    from referrals.invite_codes import ALPHABET, LENGTH

    rng = random.Random(seed)  # noqa: S311  (benchmark data, reproducible on purpose)
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("".join(rng.choice(ALPHABET) for _ in range(LENGTH)))
    return rng.sample(sorted(codes), count)


def load(*, users: int, invitees: int, test_phones: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from referrals.models import Referral

    if users < max(test_phones, 3):
        raise ValueError("need at least the test phones: the inviter, the retrying user and the code they retry")
    now = timezone.now()
    phones = [test_phone(i) if i < test_phones else f"+7911{i:07d}" for i in range(users)]
    phones += [f"+7921{j:07d}" for j in range(invitees)]
    with transaction.atomic():
        created = User.objects.bulk_create(
            (User(phone=phone, password=UNUSABLE_PASSWORD, date_joined=now) for phone in phones), batch_size=BATCH
        )
        ids = [user.pk for user in created]
        inviter, retried = ids[0], ids[2]
        codes = invite_codes(len(ids), seed=len(ids))
        referrals = [Referral(user_id=pk, invite_code=code) for pk, code in zip(ids, codes, strict=True)]
        # Distinct activation moments, newest first by index, so cursor pages have one order.
        for offset, referral in enumerate(referrals[users:]):
            referral.invited_by_id, referral.activated_at = inviter, now - timedelta(seconds=offset + 1)
        referrals[1].invited_by_id, referrals[1].activated_at = retried, now
        Referral.objects.bulk_create(referrals, batch_size=BATCH)
    # As autovacuum would have left a settled database: planner statistics, visibility map.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE accounts_user")
        cursor.execute("VACUUM ANALYZE referrals_referral")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--invitees", type=int, default=100_000)
    parser.add_argument("--test-phones", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    load(users=args.users, invitees=args.invitees, test_phones=args.test_phones)


if __name__ == "__main__":
    main()
