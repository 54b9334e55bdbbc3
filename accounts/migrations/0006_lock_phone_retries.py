"""accounts_lock_phone() tries again when the row it met is gone before it could lock it.

0004's version inserted a missing row with ON CONFLICT DO NOTHING and locked it in the next
statement, assuming that a row, once there, stays. manage.py purge_expired now deletes the rows of
phones without a live code: one that another request had just inserted could go in between, and
the function then locked nothing and returned no row (a 500 for the sign-in that called it).
"""

import importlib

from django.db import migrations

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION accounts_lock_phone(p_phone varchar, p_failures_since timestamptz)
RETURNS TABLE (
    locked_id bigint, locked_code_hash varchar, locked_expires_at timestamptz, locked_attempts smallint,
    recent_failures bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    tries int := 0;
BEGIN
    LOOP
        PERFORM 1 FROM accounts_phonechallenge c WHERE c.phone = p_phone FOR UPDATE;
        EXIT WHEN FOUND;
        -- Bounded: a phone the column stores otherwise than given (trailing spaces, which varchar(16)
        -- drops) would conflict and never be found.
        tries := tries + 1;
        IF tries > 3 THEN
            RAISE EXCEPTION USING MESSAGE = 'accounts_lock_phone(' || p_phone || '): no row to lock after 3 inserts';
        END IF;
        INSERT INTO accounts_phonechallenge (phone, code_hash, attempts) VALUES (p_phone, '', 0)
        ON CONFLICT DO NOTHING;
    END LOOP;
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
        previous = importlib.import_module("accounts.migrations.0004_lock_phone_function").POSTGRESQL_FUNCTION
        schema_editor.execute(previous.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_verbose_names")]

    operations = [migrations.RunPython(forward, backward)]
