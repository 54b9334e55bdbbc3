"""On PostgreSQL the inviter's foreign key sets invited_by to NULL itself when the inviter is deleted.

Django's collector clears the invitees' inviter before it deletes the inviter's row, so an
activation of the inviter's code that committed while the DELETE waited for that row was missed,
and the deletion's commit failed on the foreign key. The key's own action runs inside the DELETE,
after its lock. (SQLite runs one writer at a time: nothing commits in between there.)

A later AlterField of invited_by recreates the key without it: tests/test_referrals.py checks it.
"""

from django.db import migrations

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


def set_null_on_delete(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _replace_inviter_foreign_key(schema_editor, "ON DELETE SET NULL")


def no_action_on_delete(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _replace_inviter_foreign_key(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0003_uncount_invitees_in_the_database")]

    operations = [migrations.RunPython(set_null_on_delete, no_action_on_delete)]
