"""The referral table's triggers read rows through their indexes, whatever the statistics say.

PostgreSQL plans a trigger's statement once a session, without the row's key, from the statistics
of the moment:
- 0008's count of a new row's invitees already there (a restore may load an inviter after them):
  where one inviter holds most rows (the benchmark's 100,000 invitees of one user), every inviter
  looked like that one, and a full read of the table looked cheaper than the index. Each new
  account read the whole table: 14 ms of the database's time at 120,000 rows, growing with it.
- 0005's search for a new row's own invitees (is it an inviter whose list needs building?):
  planned while the table was small (a new database that autovacuum analyzed early), it read the
  whole table once per new row. A bulk load of 5,000-row batches grew slower with every batch:
  3 s rising to 16 s by the sixth, against 0.4-0.5 s each.
Each statement in these functions touches a few rows by key, and each has an index to do it, so
the functions are told to use one wherever there is one (the functions they call inherit it). JIT
compilation is off for them too: a future statement without an index would otherwise look dear
enough (full reads priced out) to be compiled on every call, tens of milliseconds for a few rows.
"""

from django.db import migrations

FUNCTIONS = ["referrals_count_invitees()", "referrals_recent_invitees_changed()"]
SETTINGS = {"enable_seqscan": "off", "jit": "off"}


def configure(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # SQLite's row triggers use the index already
        for function in FUNCTIONS:
            for name, value in SETTINGS.items():
                schema_editor.execute(f"ALTER FUNCTION {function} SET {name} = {value}")


def unconfigure(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for function in FUNCTIONS:
            for name in SETTINGS:
                schema_editor.execute(f"ALTER FUNCTION {function} RESET {name}")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0009_recent_invitees_without_joins")]

    operations = [migrations.RunPython(configure, unconfigure)]
