"""accounts_lock_phone(): a phone's row locked (inserted first if it has none), then read, in one round trip.

Every check of a code and every send starts by locking the phone's row, then reads what those
who held the lock before committed. As separate statements that was up to four round trips
(a new phone's row inserted, then locked again); one statement could not do it, as in READ
COMMITTED its snapshot predates the wait for the lock. Each statement of a PL/pgSQL function
takes a fresh snapshot, so the reads after the lock here see every refusal committed before it.

SQLite has no row locks: there accounts.services runs the statements one by one, as before.
"""

from django.db import migrations

POSTGRESQL_FUNCTION = """
CREATE FUNCTION accounts_lock_phone(p_phone varchar, p_failures_since timestamptz)
RETURNS TABLE (
    locked_id bigint, locked_code_hash varchar, locked_expires_at timestamptz, locked_attempts smallint,
    recent_failures bigint
)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts_phonechallenge c WHERE c.phone = p_phone FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO accounts_phonechallenge (phone, code_hash, attempts) VALUES (p_phone, '', 0)
        ON CONFLICT DO NOTHING;
        PERFORM 1 FROM accounts_phonechallenge c WHERE c.phone = p_phone FOR UPDATE;
    END IF;
    RETURN QUERY
    SELECT c.id, c.code_hash, c.expires_at, c.attempts,
           CASE WHEN p_failures_since IS NOT NULL THEN (
               SELECT count(*) FROM accounts_checkfailure f WHERE f.phone = p_phone AND f.failed_at >= p_failures_since
           ) END
    FROM accounts_phonechallenge c WHERE c.phone = p_phone;
END
$$
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION accounts_lock_phone(varchar, timestamptz)")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_admin_list_index")]

    operations = [migrations.RunPython(forward, backward)]
