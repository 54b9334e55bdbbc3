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
DECLARE
    inviters bigint[];
    moves bigint[];
BEGIN
    -- No statement here joins the transition tables (with each other or themselves): PL/pgSQL
    -- plans a statement once a session, for the size of the first table it saw, so a join planned
    -- for one row ran as a nested loop over a bulk load's 10,000 (21 s, where these take 0.2).
    IF TG_OP = 'INSERT' THEN
        -- Each new invitee adds itself to its inviter's count.
        UPDATE referrals_referral r SET invitees_count = r.invitees_count + c.added
        FROM (
            SELECT invited_by_id, count(*) AS added FROM new_rows
            WHERE invited_by_id IS NOT NULL GROUP BY invited_by_id ORDER BY invited_by_id
        ) c
        WHERE r.user_id = c.invited_by_id;
        -- Then the new rows' own counts, from their invitees already there: those inserted before
        -- them, in this statement or an earlier one (an inviter loaded after its invitees), and in
        -- place of a count a dump brought along.
        UPDATE referrals_referral r SET invitees_count = c.invitees
        FROM (
            SELECT n.user_id, (SELECT count(*) FROM referrals_referral i WHERE i.invited_by_id = n.user_id) AS invitees
            FROM new_rows n
        ) c
        WHERE r.user_id = c.user_id AND r.invitees_count <> c.invitees;
    ELSE
        -- An updated row is in both tables once: each inviter gains its new rows and loses its old
        -- ones, whatever else changed (a row's own key too).
        SELECT array_agg(inviter ORDER BY inviter), array_agg(moved ORDER BY inviter) INTO inviters, moves FROM (
            SELECT inviter, sum(moved) AS moved FROM (
                SELECT invited_by_id AS inviter, 1 AS moved FROM new_rows WHERE invited_by_id IS NOT NULL
                UNION ALL
                SELECT invited_by_id, -1 FROM old_rows WHERE invited_by_id IS NOT NULL
            ) changes
            GROUP BY inviter
            HAVING sum(moved) <> 0
        ) c;
        -- A statement trigger fires for every UPDATE, the counts' own too, which move no invitee:
        -- without this test the counts' update would fire it again, without end.
        IF inviters IS NOT NULL THEN
            -- Never below 0 (the column's check): a count written over by hand may be short, and its
            -- inviter must still be deletable (Django clears the invitees' inviter first). In
            -- primary-key order, as activations lock rows.
            UPDATE referrals_referral r SET invitees_count = GREATEST(r.invitees_count + c.moved, 0)
            FROM unnest(inviters, moves) AS c (inviter, moved)
            WHERE r.user_id = c.inviter;
        END IF;
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
    -- A row that invites itself counted itself just now.
    UPDATE referrals_referral SET invitees_count = invitees_count + 1
    WHERE user_id = NEW.invited_by_id AND NEW.invited_by_id <> NEW.user_id;
END
""",
    """
CREATE TRIGGER referrals_count_invitees_updated AFTER UPDATE OF invited_by_id ON referrals_referral
FOR EACH ROW WHEN OLD.invited_by_id IS NOT NEW.invited_by_id
BEGIN
    UPDATE referrals_referral SET invitees_count = max(invitees_count - 1, 0) WHERE user_id = OLD.invited_by_id;
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
