"""Row locks on a user taken ahead of the locks a statement would take later, to keep one lock order."""

from django.db import connection

from accounts.models import User

LOCK_MODES = {"KEY SHARE", "SHARE"}


def lock_user_row(user_id: int, *, mode: str) -> None:
    """The user's row locked `FOR <mode>` in the caller's transaction; none when it is gone, and
    nothing on SQLite, which runs one writer at a time."""
    if mode not in LOCK_MODES:
        raise ValueError(f"not a lock mode here: {mode!r}")
    if connection.features.has_select_for_update:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {User._meta.db_table} WHERE id = %s FOR {mode}", [user_id])  # noqa: S608
