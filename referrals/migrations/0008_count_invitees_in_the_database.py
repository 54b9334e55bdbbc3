"""Each inviter's invitees_count is kept by the database, from the rows themselves, on every path.

The activation service added one to the count and a trigger (0003) took one off a deleted invitee;
every other way of adding or moving an invitee left the count wrong for good: a user restored with
`loaddata` after a deletion, rows made with `bulk_create`, an inviter changed by a raw statement or
the ORM's `update()`. Now:

- An inserted row counts the invitees already there (an inviter loaded after their invitees, or
  with a count from a dump), and adds itself to its inviter's count.
- A change of inviter moves the invitee from one count to the other. The activation's own change
  does it: its inviter's row is already locked, as the service's own update found it.
- Deletions are uncounted by 0003's trigger, as before.

On PostgreSQL the insert and update triggers run once per statement, over its transition tables:
a row-level trigger would update one inviter's row once per invitee, and a bulk load of 100,000
invitees would have made 100,000 versions of that row in one transaction. Like 0005's, they fire
on every UPDATE of the table (a trigger with transition tables takes no column list) and find
nothing to do unless an inviter changed. SQLite runs row-level triggers; a table rebuild drops them
(the constraint below rebuilds it), so 0003's is made again after it.

The constraint: an invitee has an activation moment. Rows made by hand without one sorted first
in every list and made the cursor pages fail with a 500; any such row gets the migration's moment.

A restore that writes over existing rows (`loaddata` of a row that is still there) writes the
dump's count over the kept one, as any direct write of the column does:
`UPDATE referrals_referral r SET invitees_count = (SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = r.user_id)`
puts every count right.
"""

from importlib import import_module

from django.db import migrations, models

RECOUNT_ALL = """
UPDATE referrals_referral SET invitees_count = (
    SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = referrals_referral.user_id
)
WHERE invitees_count <> (
    SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = referrals_referral.user_id
)
"""
GIVE_INVITEES_A_MOMENT = (
    "UPDATE referrals_referral SET activated_at = CURRENT_TIMESTAMP "
    "WHERE invited_by_id IS NOT NULL AND activated_at IS NULL"
)

POSTGRESQL = """
CREATE FUNCTION referrals_count_invitees() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The new rows' own counts first: their invitees already there (from this statement too).
        UPDATE referrals_referral r SET invitees_count = c.invitees
        FROM (
            SELECT n.user_id, (SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = n.user_id) AS invitees
            FROM new_rows n
        ) c
        WHERE r.user_id = c.user_id AND r.invitees_count <> c.invitees;
        -- Then inviters from before this statement: those it inserted were counted just now.
        UPDATE referrals_referral r SET invitees_count = r.invitees_count + c.added
        FROM (
            SELECT invited_by_id, count(*) AS added FROM new_rows
            WHERE invited_by_id IS NOT NULL AND invited_by_id NOT IN (SELECT user_id FROM new_rows)
            GROUP BY invited_by_id
        ) c
        WHERE r.user_id = c.invited_by_id;
    -- A statement trigger fires for every UPDATE, the counts' own too, which change no inviter:
    -- without this test the counts' update would fire it again, without end.
    ELSIF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
        WHERE o.invited_by_id IS DISTINCT FROM n.invited_by_id
    ) THEN
        UPDATE referrals_referral r SET invitees_count = r.invitees_count + c.moved
        FROM (
            SELECT inviter, sum(moved) AS moved FROM (
                SELECT o.invited_by_id AS inviter, -1 AS moved
                FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
                WHERE o.invited_by_id IS DISTINCT FROM n.invited_by_id AND o.invited_by_id IS NOT NULL
                UNION ALL
                SELECT n.invited_by_id, 1
                FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
                WHERE o.invited_by_id IS DISTINCT FROM n.invited_by_id AND n.invited_by_id IS NOT NULL
            ) changes
            GROUP BY inviter
        ) c
        WHERE r.user_id = c.inviter AND c.moved <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER referrals_count_invitees_inserted AFTER INSERT ON referrals_referral
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_count_invitees();

CREATE TRIGGER referrals_count_invitees_updated AFTER UPDATE ON referrals_referral
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_count_invitees();
"""
POSTGRESQL_BACKWARD = """
DROP TRIGGER referrals_count_invitees_updated ON referrals_referral;
DROP TRIGGER referrals_count_invitees_inserted ON referrals_referral;
DROP FUNCTION referrals_count_invitees();
"""

SQLITE = [
    """
CREATE TRIGGER referrals_count_invitees_inserted AFTER INSERT ON referrals_referral
FOR EACH ROW
BEGIN
    UPDATE referrals_referral SET invitees_count = (
        SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = NEW.user_id
    ) WHERE user_id = NEW.user_id AND invitees_count <> (
        SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = NEW.user_id
    );
    UPDATE referrals_referral SET invitees_count = invitees_count + 1 WHERE user_id = NEW.invited_by_id;
END
""",
    """
CREATE TRIGGER referrals_count_invitees_updated AFTER UPDATE OF invited_by_id ON referrals_referral
FOR EACH ROW WHEN OLD.invited_by_id IS NOT NEW.invited_by_id
BEGIN
    UPDATE referrals_referral SET invitees_count = invitees_count - 1 WHERE user_id = OLD.invited_by_id;
    UPDATE referrals_referral SET invitees_count = invitees_count + 1 WHERE user_id = NEW.invited_by_id;
END
""",
]
# 0003's, dropped by the table's rebuild.
SQLITE_UNCOUNT = import_module("referrals.migrations.0003_uncount_invitees_in_the_database").SQLITE_TRIGGER


def give_invitees_a_moment(apps, schema_editor):
    schema_editor.execute(GIVE_INVITEES_A_MOMENT)


def count_in_the_database(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL)
    else:
        for statement in SQLITE:
            schema_editor.execute(statement)
    schema_editor.execute(RECOUNT_ALL)


def count_in_the_service(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_BACKWARD)
    else:
        schema_editor.execute("DROP TRIGGER referrals_count_invitees_updated")
        schema_editor.execute("DROP TRIGGER referrals_count_invitees_inserted")


def restore_sqlite_uncount_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS referrals_uncount_invitee")
        schema_editor.execute(SQLITE_UNCOUNT)


class Migration(migrations.Migration):
    dependencies = [("referrals", "0007_verbose_names")]

    operations = [
        migrations.RunPython(give_invitees_a_moment, migrations.RunPython.noop),
        # The rebuild for the constraint (adding or removing it) drops every trigger of the table.
        migrations.RunPython(migrations.RunPython.noop, restore_sqlite_uncount_trigger),
        migrations.AddConstraint(
            model_name="referral",
            constraint=models.CheckConstraint(
                condition=models.Q(invited_by__isnull=True) | models.Q(activated_at__isnull=False),
                name="referral_invitee_has_activated_at",
            ),
        ),
        migrations.RunPython(restore_sqlite_uncount_trigger, migrations.RunPython.noop),
        migrations.RunPython(count_in_the_database, count_in_the_service),
    ]
