"""PostgreSQL is told that inviters are many, whatever the sample of the inviter column shows.

Where one inviter holds most referral rows (the benchmark's 100,000 invitees of one user), the
statistics count a handful of distinct inviters, and a statement planned without its inviter
expects each to have thousands of invitees: a full read of the table then looked cheaper than the
index. Every user deletion read it (the inviter key's ON DELETE SET NULL, whose cached plan the
service's connections make generic: project/prepared_statements.py), and so did the admin's invite
tree of any small inviter, at every level: 17 and 42-67 ms at 120,000 rows, growing with the table. The popular inviters stay in the statistics' most common
values, so a statement that names one still expects its thousands.

The figure is a fraction of the rows (n_distinct -0.5: half as many inviters as rows), so it grows
with the table; ANALYZE keeps it and uses it from now on, and runs here so that it counts at once.
"""

from django.db import migrations

COLUMN = "ALTER TABLE referrals_referral ALTER COLUMN invited_by_id"


def inviters_are_many(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"{COLUMN} SET (n_distinct = -0.5)")
        schema_editor.execute("ANALYZE referrals_referral")


def as_sampled(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"{COLUMN} RESET (n_distinct)")
        schema_editor.execute("ANALYZE referrals_referral")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0010_count_invitees_by_index")]

    operations = [migrations.RunPython(inviters_are_many, as_sampled)]
