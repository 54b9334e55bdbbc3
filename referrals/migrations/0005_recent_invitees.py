"""On PostgreSQL the phones of each inviter's 100 newest invitees are kept in a table of their own.

The profile read them with 100 primary-key lookups into accounts_user, and that was most of
PostgreSQL's time on `GET /me/` (docs/benchmarks.md): about 0.3 ms a run on a slow machine,
against 0.07 ms for reading one row that holds them. The lists are a copy, so triggers keep them:
any change to who invited whom, to when, or to an invitee's phone (the API, the admin, a raw
statement) rebuilds the lists it touches from the invitees themselves, in the same transaction.

Concurrent changes: referrals_refresh_recent_invitees() locks the inviter's referral row, then
rebuilds the list in a statement of its own, so that its snapshot (READ COMMITTED) sees whatever
the lock's previous holders committed. Everyone who changes a list rebuilds it, except a phone
change of a user whose activation is still under way (it reads no inviter yet): so an activation
first takes its user's row FOR SHARE, which waits for such a change, and makes a later one wait
until the activation commits. Locks follow the activation's order (referral rows, then that
user's row; a phone change holds the user's row and then needs only its inviter's committed
referral row), so the two cannot deadlock each other. A user deleted while their phone changes can
(the deletion holds the referral rows, the change the user's row): PostgreSQL then fails one of
them, as for a deletion racing an activation.

Why a table of its own and not a column of referrals_referral: an activation already updates the
inviter's row (the count), and a second update of a row in one transaction makes PostgreSQL check
its user_id key at commit, which takes the inviter's accounts_user row FOR KEY SHARE: behind a
change of that user's phone, itself waiting for a row the activation holds, that deadlocked. The
table has no foreign key for the same reason; the triggers delete a deleted inviter's list. Nor is
it a model: the ORM never writes it.

What it costs: a rebuild (about 0.3 ms of PostgreSQL's time) for each activation, deletion or
phone change of an invitee; every other statement that inserts or updates referrals_referral or
accounts_user runs a trigger that finds nothing to rebuild (the counts' updates, names, a new
account). Rows loaded in any order in one transaction end right; two transactions that load an
inviter and their invitees at the same time (a parallel restore) can leave that inviter's list
short, as neither sees the other's rows: fill the lists again afterwards with
`SELECT referrals_refresh_recent_invitees(ARRAY(SELECT DISTINCT invited_by_id FROM referrals_referral))`.

The forward migration fills every list under the tables' locks: about 0.3 ms per inviter. SQLite
reads the profile with the ORM and has neither the table nor the triggers.
"""

from django.db import migrations

# The 100 matches referrals.selectors.PROFILE_INVITEES, and the order its ORM path reads;
# tests/test_recent_invitees.py compares them.
NEWEST_INVITEES = """
SELECT u.phone FROM referrals_referral n JOIN accounts_user u ON u.id = n.user_id
WHERE n.invited_by_id = inviter ORDER BY n.activated_at DESC, n.user_id DESC LIMIT 100
"""
POSTGRESQL = """
CREATE TABLE referrals_recent_invitees (inviter_id bigint PRIMARY KEY, phones varchar[] NOT NULL);

CREATE FUNCTION referrals_refresh_recent_invitees(inviters bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    inviter bigint;
BEGIN
    -- In primary-key order, as activations lock rows, so two rebuilds cannot deadlock each other.
    FOR inviter IN SELECT DISTINCT i FROM unnest(inviters) AS i WHERE i IS NOT NULL ORDER BY i LOOP
        PERFORM 1 FROM referrals_referral WHERE user_id = inviter FOR NO KEY UPDATE;
        IF FOUND THEN
            INSERT INTO referrals_recent_invitees (inviter_id, phones) VALUES (inviter, ARRAY({newest}))
            ON CONFLICT (inviter_id) DO UPDATE SET phones = excluded.phones;
        ELSE
            DELETE FROM referrals_recent_invitees WHERE inviter_id = inviter;
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION referrals_recent_invitees_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- New invitees' phones are read as committed: a change of one under way is waited for
        -- (it does not see its user as anyone's invitee yet, so it would rebuild nothing).
        PERFORM 1 FROM accounts_user
        WHERE id IN (SELECT user_id FROM new_rows WHERE invited_by_id IS NOT NULL) ORDER BY id FOR SHARE;
        -- An inviter's row may come after its invitees' (the key is deferred: loaddata, a restore).
        PERFORM referrals_refresh_recent_invitees(ARRAY(
            SELECT invited_by_id FROM new_rows
            UNION
            SELECT n.user_id FROM new_rows n
            WHERE EXISTS (SELECT 1 FROM referrals_referral c WHERE c.invited_by_id = n.user_id)
        ));
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM referrals_recent_invitees WHERE inviter_id IN (SELECT user_id FROM old_rows);
        PERFORM referrals_refresh_recent_invitees(ARRAY(SELECT invited_by_id FROM old_rows));
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM referrals_recent_invitees;
    ELSE
        -- Every UPDATE of the table comes here (a trigger with transition tables takes no column
        -- list): only rows whose inviter or moment changed count.
        PERFORM 1 FROM accounts_user
        WHERE id IN (
            SELECT n.user_id FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
            WHERE n.invited_by_id IS NOT NULL AND o.invited_by_id IS DISTINCT FROM n.invited_by_id
        )
        ORDER BY id FOR SHARE;
        PERFORM referrals_refresh_recent_invitees(ARRAY(
            SELECT unnest(ARRAY[o.invited_by_id, n.invited_by_id])
            FROM old_rows o JOIN new_rows n ON n.user_id = o.user_id
            WHERE o.invited_by_id IS DISTINCT FROM n.invited_by_id OR o.activated_at IS DISTINCT FROM n.activated_at
        ));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION referrals_recent_invitees_users_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Users come before their referral rows, except where rows are loaded in another order
    -- (dumpdata writes them in the order the models are named): then the list missed their phones.
    PERFORM referrals_refresh_recent_invitees(ARRAY(
        SELECT r.invited_by_id FROM referrals_referral r JOIN new_rows n ON n.id = r.user_id
    ));
    RETURN NULL;
END
$$;

CREATE FUNCTION referrals_recent_invitees_phone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The inviter as committed; an activation of this user under way waits for this change
    -- (above), and then reads the new phone.
    IF OLD.phone IS DISTINCT FROM NEW.phone THEN
        PERFORM referrals_refresh_recent_invitees(ARRAY(
            SELECT invited_by_id FROM referrals_referral WHERE user_id = NEW.id
        ));
    END IF;
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

CREATE TRIGGER referrals_recent_invitees_truncated AFTER TRUNCATE ON referrals_referral
FOR EACH STATEMENT EXECUTE FUNCTION referrals_recent_invitees_changed();

CREATE TRIGGER referrals_recent_invitees_users_added AFTER INSERT ON accounts_user
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION referrals_recent_invitees_users_added();

-- Neither a column list nor a WHEN clause: either would name the phone column and stop a later
-- migration from altering its type.
CREATE TRIGGER referrals_recent_invitees_phone_changed AFTER UPDATE ON accounts_user
FOR EACH ROW EXECUTE FUNCTION referrals_recent_invitees_phone_changed();

SELECT referrals_refresh_recent_invitees(ARRAY(
    SELECT DISTINCT invited_by_id FROM referrals_referral WHERE invited_by_id IS NOT NULL
));
"""

POSTGRESQL_BACKWARD = """
DROP TRIGGER referrals_recent_invitees_phone_changed ON accounts_user;
DROP TRIGGER referrals_recent_invitees_users_added ON accounts_user;
DROP TRIGGER referrals_recent_invitees_truncated ON referrals_referral;
DROP TRIGGER referrals_recent_invitees_deleted ON referrals_referral;
DROP TRIGGER referrals_recent_invitees_updated ON referrals_referral;
DROP TRIGGER referrals_recent_invitees_inserted ON referrals_referral;
DROP FUNCTION referrals_recent_invitees_phone_changed();
DROP FUNCTION referrals_recent_invitees_users_added();
DROP FUNCTION referrals_recent_invitees_changed();
DROP FUNCTION referrals_refresh_recent_invitees(bigint[]);
DROP TABLE referrals_recent_invitees;
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
