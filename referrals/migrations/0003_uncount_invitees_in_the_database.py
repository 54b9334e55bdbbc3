"""Deletions keep the invite graph right in the database itself, on the rows as they are deleted.

- A trigger uncounts a deleted invitee from their inviter's invitees_count. The post_delete signal
  only knew the row as the deletion first read it: when the user's activation committed in between
  (the deletion waits for its row lock), the inviter stayed counted. Locking the row first in
  pre_delete fixed that, but made deletions take rows in another order than each other (an inviter
  and their invitee deleted at once deadlocked). The trigger runs inside the DELETE, after its lock.
- On PostgreSQL the inviter's foreign key also sets invited_by to NULL itself. Django's collector
  does that before it deletes, so an activation that committed while the DELETE waited for the
  inviter's row was missed, and the commit failed on the foreign key.

SQLite drops a table's triggers when a migration rebuilds the table: tests/test_referrals.py checks
that the trigger exists, on both databases.
"""

from django.db import migrations

POSTGRESQL_FUNCTION = """
CREATE FUNCTION referrals_uncount_invitee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE referrals_referral SET invitees_count = invitees_count - 1
    WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
FOR EACH ROW WHEN (OLD.invited_by_id IS NOT NULL) EXECUTE FUNCTION referrals_uncount_invitee()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
FOR EACH ROW WHEN OLD.invited_by_id IS NOT NULL
BEGIN
    UPDATE referrals_referral SET invitees_count = invitees_count - 1
    WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
END
"""
INVITER_FOREIGN_KEY = """
SELECT conname FROM pg_constraint
WHERE conrelid = 'referrals_referral'::regclass AND contype = 'f'
  AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                      WHERE attrelid = 'referrals_referral'::regclass AND attname = 'invited_by_id')]
"""


def _replace_inviter_foreign_key(schema_editor, on_delete: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(INVITER_FOREIGN_KEY)
        (name,) = cursor.fetchone()
    schema_editor.execute(
        f"ALTER TABLE referrals_referral DROP CONSTRAINT {name}, ADD CONSTRAINT {name} "
        f"FOREIGN KEY (invited_by_id) REFERENCES referrals_referral (user_id) {on_delete} "
        "DEFERRABLE INITIALLY DEFERRED"
    )


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        schema_editor.execute(POSTGRESQL_TRIGGER)
        _replace_inviter_foreign_key(schema_editor, "ON DELETE SET NULL")
    else:
        schema_editor.execute(SQLITE_TRIGGER)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _replace_inviter_foreign_key(schema_editor, "")
        schema_editor.execute("DROP TRIGGER referrals_uncount_invitee ON referrals_referral")
        schema_editor.execute("DROP FUNCTION referrals_uncount_invitee()")
    else:
        schema_editor.execute("DROP TRIGGER referrals_uncount_invitee")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0002_drop_redundant_inviter_index")]

    operations = [migrations.RunPython(forward, backward)]
