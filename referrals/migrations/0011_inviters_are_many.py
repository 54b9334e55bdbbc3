"""PostgreSQL is told that inviters are many, whatever the sample of the inviter column shows.

Where one inviter holds most referral rows (the benchmark's 100,000 invitees of one user), the
statistics count a handful of distinct inviters, and a statement planned without its inviter
expects each to have thousands of invitees: a full read of the table then looked cheaper than the
index. Every user deletion read it (the inviter key's ON DELETE SET NULL, whose cached plan the
service's connections make generic: project/prepared_statements.py), and so did the admin's invite
tree of any small inviter, at every level: 17 and 42-67 ms at 120,000 rows, growing with the table.
The popular inviters stay in the statistics' most common values, so a statement that names one
still expects its thousands.

The figure is a fraction of the rows (n_distinct -0.5: half as many inviters as rows), so it grows
with the table; ANALYZE keeps it and uses it from now on. It runs here, so that the setting counts
at once, only on a table with rows: analyzed empty (a new database), the table looked empty to
every plan until autovacuum came, and a bulk load's trigger statements, planned once a session
for that, grew slower with every batch (5,000-row batches: 0.4 s each when never analyzed, 3 s
rising to 17 s by the sixth).
"""

from django.db import migrations

COLUMN = "ALTER TABLE referrals_referral ALTER COLUMN invited_by_id"


def inviters_are_many(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"{COLUMN} SET (n_distinct = -0.5)")
        analyze_unless_empty(schema_editor)


def as_sampled(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"{COLUMN} RESET (n_distinct)")
        analyze_unless_empty(schema_editor)


def analyze_unless_empty(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM referrals_referral)")
        if cursor.fetchone()[0]:
            cursor.execute("ANALYZE referrals_referral")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0010_triggers_read_by_index")]

    operations = [migrations.RunPython(inviters_are_many, as_sampled)]
