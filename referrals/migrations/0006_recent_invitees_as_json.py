"""The kept lists of newest invitees' phones (migration 0005) as the JSON the profile sends.

Kept as an array, each read turned the array into text in PostgreSQL, psycopg2 parsed that text
into a list of strings, and orjson wrote them out again, on every `GET /me/` (docs/benchmarks.md).
Kept as `json`, a read copies the list's text out, and the reply carries it as it is
(orjson.Fragment). array_to_json() writes a list the way the API's renderer does (compact, no
spaces); what a rebuild reads and locks is as in 0005. SQLite has neither the table nor the function.

Workers of the release before that already prepared the profile's statement fail it after this
migration (its result type changed) until they restart; bin/entrypoint migrates before gunicorn starts.
"""

import importlib

from django.db import migrations

# The rebuild reads what it read in 0005: that migration's own text, not a copy of it.
NEWEST_INVITEES = importlib.import_module("referrals.migrations.0005_recent_invitees").NEWEST_INVITEES
REFRESH_FUNCTION = """
CREATE OR REPLACE FUNCTION referrals_refresh_recent_invitees(inviters bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    inviter bigint;
BEGIN
    -- In primary-key order, as activations lock rows, so two rebuilds cannot deadlock each other.
    FOR inviter IN SELECT DISTINCT i FROM unnest(inviters) AS i WHERE i IS NOT NULL ORDER BY i LOOP
        PERFORM 1 FROM referrals_referral WHERE user_id = inviter FOR NO KEY UPDATE;
        IF FOUND THEN
            INSERT INTO referrals_recent_invitees (inviter_id, phones) VALUES (inviter, {phones})
            ON CONFLICT (inviter_id) DO UPDATE SET phones = excluded.phones;
        ELSE
            DELETE FROM referrals_recent_invitees WHERE inviter_id = inviter;
        END IF;
    END LOOP;
END
$$;
"""
FILL_EVERY_LIST = """
SELECT referrals_refresh_recent_invitees(ARRAY(
    SELECT DISTINCT invited_by_id FROM referrals_referral WHERE invited_by_id IS NOT NULL
));
"""

FORWARD = (
    "ALTER TABLE referrals_recent_invitees ALTER COLUMN phones TYPE json USING array_to_json(phones);"
    + REFRESH_FUNCTION.replace("{phones}", f"array_to_json(ARRAY({NEWEST_INVITEES}))")
)
BACKWARD = (
    "ALTER TABLE referrals_recent_invitees ALTER COLUMN phones TYPE varchar[] USING '{}';"
    + REFRESH_FUNCTION.replace("{phones}", f"ARRAY({NEWEST_INVITEES})")
    + FILL_EVERY_LIST
)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("referrals", "0005_recent_invitees")]

    operations = [migrations.RunPython(forward, backward)]
