"""On PostgreSQL a refresh token's record sets its user to NULL itself when the user is deleted.

SimpleJWT's key is SET_NULL in Django only: the collector clears the records it has read before it
deletes the user, so a record that a sign-in or refresh committed in between was missed, and the
deletion failed at its commit. The key's own action runs inside the DELETE, after its lock, and
sees every record committed by then. (SQLite runs one writer at a time: nothing commits in between.)

A later AlterField of the key (a SimpleJWT migration) recreates it without the action:
tests/test_deletion_races.py checks it.
"""

from django.db import migrations

TABLE = "token_blacklist_outstandingtoken"
USER_FOREIGN_KEY = f"""
SELECT conname FROM pg_constraint
WHERE conrelid = '{TABLE}'::regclass AND contype = 'f'
  AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = '{TABLE}'::regclass AND attname = 'user_id')]
"""  # noqa: S608 - no input in it


def _replace_user_foreign_key(schema_editor, on_delete: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(USER_FOREIGN_KEY)
        (name,) = cursor.fetchone()
    name = schema_editor.quote_name(name)
    schema_editor.execute(
        f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} "
        f"FOREIGN KEY (user_id) REFERENCES accounts_user (id) {on_delete} DEFERRABLE INITIALLY DEFERRED"
    )


def set_null_on_delete(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _replace_user_foreign_key(schema_editor, "ON DELETE SET NULL")


def no_action_on_delete(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _replace_user_foreign_key(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_lock_phone_retries"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [migrations.RunPython(set_null_on_delete, no_action_on_delete)]
