"""A phone's row remembers the previous wrong guess at its code, and accounts_lock_phone() returns it.

The same wrong guess sent again (a retry after a lost reply on a bad network, a double tap) tells a
guesser nothing new, and is not counted: neither as an attempt at the code nor toward the day's lock.
The function returns the remembered guess with the rest of the locked row, read after the lock, as
0004 says why. A column more in its result is another result type, which CREATE OR REPLACE cannot
give a function: it is dropped and created again, in this migration's transaction. An older
release's statements name the columns they read, so they still run against the new one.

The column's default is the database's too, so that an older release's replicas, which insert rows
without it during a rolling update, still can (they count every guess, as before).
"""

import importlib

from django.db import migrations, models

PREVIOUS_FUNCTION = importlib.import_module("accounts.migrations.0006_lock_phone_retries").POSTGRESQL_FUNCTION
DROP_FUNCTION = "DROP FUNCTION accounts_lock_phone(varchar, timestamptz)"


def _returning_the_wrong_guess(function: str) -> str:
    """0006's function, which also returns the remembered wrong guess, after the attempts."""
    for before, after in [
        ("locked_attempts smallint,", "locked_attempts smallint, locked_wrong_guess_hash varchar,"),
        ("SELECT c.id, c.code_hash, c.expires_at, c.attempts,", "SELECT c.id, c.code_hash, c.expires_at, c.attempts, c.wrong_guess_hash,"),
    ]:
        if function.count(before) != 1:
            raise ValueError(f"0006's function has not exactly one {before!r}")
        function = function.replace(before, after)
    return function


POSTGRESQL_FUNCTION = _returning_the_wrong_guess(PREVIOUS_FUNCTION)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_FUNCTION)
        schema_editor.execute(POSTGRESQL_FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_FUNCTION)
        schema_editor.execute(PREVIOUS_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_forget_refresh_token_texts")]

    operations = [
        migrations.AddField(
            model_name="phonechallenge",
            name="wrong_guess_hash",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.RunPython(forward, backward),
    ]
