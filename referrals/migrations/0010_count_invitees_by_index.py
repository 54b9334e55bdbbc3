"""The invitee-count trigger of 0008 reads invitees through their index, whatever the statistics say.

0008's trigger counts a new row's invitees already there (a restore may load an inviter after
them). PostgreSQL plans that count once, without the row's key, from the inviter column's
statistics: where one inviter holds most rows (the benchmark's 100,000 invitees of one user),
every inviter looks like that one, and a full scan of the table looked cheaper than the index. So
each new account read the whole table: 14 ms of the database's time at 120,000 rows, growing with
it. The trigger's statements each touch a few rows by key, so the function is told to use an index
wherever there is one; every statement in it has one. JIT compilation is off for it too: a future
statement without an index would otherwise look dear enough (seq scans priced out) to be compiled
on every call, tens of milliseconds for a few rows.
"""

from django.db import migrations

SETTINGS = {"enable_seqscan": "off", "jit": "off"}


def configure(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # SQLite's row triggers use the index already
        for name, value in SETTINGS.items():
            schema_editor.execute(f"ALTER FUNCTION referrals_count_invitees() SET {name} = {value}")


def unconfigure(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in SETTINGS:
            schema_editor.execute(f"ALTER FUNCTION referrals_count_invitees() RESET {name}")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0009_recent_invitees_without_joins")]

    operations = [migrations.RunPython(configure, unconfigure)]
