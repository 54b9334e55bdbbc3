"""On PostgreSQL each referral row keeps the phones of its 100 newest invitees, kept by the database.

The profile read them with 100 primary-key lookups into accounts_user, and that was most of
PostgreSQL's time on `GET /me/` (docs/benchmarks.md): about 0.3 ms a run on a slow machine,
against 0.07 ms for reading one row that holds them. The list is a copy, so triggers keep it: any
change to who invited whom, to when, or to an invitee's phone (the API, the admin, a raw statement)
rebuilds the lists it touches from the invitees themselves, in the same transaction.

Concurrent changes: referrals_refresh_recent_invitees() locks the inviter's row, then rebuilds
the list in a statement of its own, so that its snapshot (READ COMMITTED) sees whatever the lock's
previous holders committed. A phone's trigger first waits for a running activation of that user
(their referral row's lock), so that it rebuilds the list the activation is about to commit.

The column is not on the model: the ORM neither reads nor writes it, so saving a referral it
loaded earlier cannot put back an older list. SQLite reads the profile with the ORM and has
neither the column nor the triggers.
"""

from django.db import migrations

# The 100 matches referrals.selectors.PROFILE_INVITEES, and the order its ORM path reads;
# tests/test_recent_invitees.py compares them.
NEWEST_INVITEES = """
SELECT u.phone FROM referrals_referral n JOIN accounts_user u ON u.id = n.user_id
WHERE n.invited_by_id = inviter ORDER BY n.activated_at DESC, n.user_id DESC LIMIT 100
"""
POSTGRESQL = """
ALTER TABLE referrals_referral ADD COLUMN recent_invitees varchar[] NOT NULL DEFAULT '{}';

CREATE FUNCTION referrals_refresh_recent_invitees(inviters bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    inviter bigint;
BEGIN
    -- In primary-key order, as activations lock rows, so two rebuilds cannot deadlock each other.
    FOR inviter IN SELECT DISTINCT i FROM unnest(inviters) AS i WHERE i IS NOT NULL ORDER BY i LOOP
        PERFORM 1 FROM referrals_referral WHERE user_id = inviter FOR NO KEY UPDATE;
        UPDATE referrals_referral SET recent_invitees = ARRAY({newest}) WHERE user_id = inviter;
    END LOOP;
END
$$;

CREATE FUNCTION referrals_recent_invitees_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM referrals_refresh_recent_invitees(ARRAY(SELECT invited_by_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM referrals_refresh_recent_invitees(ARRAY(SELECT invited_by_id FROM old_rows));
    ELSE
        -- Every UPDATE of the table comes here (a trigger with transition tables takes no column
        -- list), the rebuilds' own included: only rows whose inviter or moment changed count.
        PERFORM referrals_refresh_recent_invitees(ARRAY(
            SELECT unnest(ARRAY[o.invited_by_id, n.invited_by_id])
            FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
            WHERE o.invited_by_id IS DISTINCT FROM n.invited_by_id OR o.activated_at IS DISTINCT FROM n.activated_at
        ));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION referrals_recent_invitees_phone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- FOR SHARE waits for an activation of this user that is under way, then reads its inviter.
    PERFORM referrals_refresh_recent_invitees(ARRAY(
        SELECT invited_by_id FROM referrals_referral WHERE user_id = NEW.id FOR SHARE
    ));
    RETURN NULL;
END
$$;

CREATE TRIGGER referrals_recent_invitees_inserted AFTER INSERT ON referrals_referral
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_recent_invitees_changed();

CREATE TRIGGER referrals_recent_invitees_updated AFTER UPDATE ON referrals_referral
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_recent_invitees_changed();

CREATE TRIGGER referrals_recent_invitees_deleted AFTER DELETE ON referrals_referral
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_recent_invitees_changed();

CREATE TRIGGER referrals_recent_invitees_phone_changed AFTER UPDATE OF phone ON accounts_user
FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone)
EXECUTE FUNCTION referrals_recent_invitees_phone_changed();

SELECT referrals_refresh_recent_invitees(ARRAY(
    SELECT DISTINCT invited_by_id FROM referrals_referral WHERE invited_by_id IS NOT NULL
));
"""

POSTGRESQL_BACKWARD = """
DROP TRIGGER referrals_recent_invitees_phone_changed ON accounts_user;
DROP TRIGGER referrals_recent_invitees_deleted ON referrals_referral;
DROP TRIGGER referrals_recent_invitees_updated ON referrals_referral;
DROP TRIGGER referrals_recent_invitees_inserted ON referrals_referral;
DROP FUNCTION referrals_recent_invitees_phone_changed();
DROP FUNCTION referrals_recent_invitees_changed();
DROP FUNCTION referrals_refresh_recent_invitees(bigint[]);
ALTER TABLE referrals_referral DROP COLUMN recent_invitees;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL.replace("{newest}", NEWEST_INVITEES))


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0004_inviter_key_sets_null_on_delete"),
        ("accounts", "0004_lock_phone_function"),
    ]

    operations = [migrations.RunPython(forward, backward)]
