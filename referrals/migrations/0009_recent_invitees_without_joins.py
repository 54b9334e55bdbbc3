"""The newest-invitees trigger of 0005 finds what an UPDATE changed without joining its transition tables.

PL/pgSQL plans a trigger's statement once a session, for the transition tables it first saw. The
UPDATE branch joined the old rows to the new ones; planned for a one-row update (an activation),
it ran as a nested loop over a later bulk one: a 10,000-row update took 14 s after a one-row update
in the same session, against 0.1 s as the session's first (any `UPDATE` of many referral rows: a
maintenance statement, a restore that writes counts). Now each set is an aggregate over both tables
(a changed row's old and new versions differ, so they do not pair off), linear whatever the plan.
The same rows are locked and the same lists rebuilt, in the same order; the other branches are 0005's.
"""

from importlib import import_module

from django.db import migrations

# 0005's function, whole: its INSERT, DELETE and TRUNCATE branches stay as they are.
_0005 = import_module("referrals.migrations.0005_recent_invitees").POSTGRESQL
_START = "CREATE FUNCTION referrals_recent_invitees_changed()"
OLD_FUNCTION = "CREATE OR REPLACE" + _0005[_0005.index(_START) + len("CREATE") : _0005.index("$$;", _0005.index(_START)) + 3]

# 0005's UPDATE branch: from the end of its comment to the end of the function's IF.
_BRANCH_START = OLD_FUNCTION.index("only rows whose inviter or moment changed count.\n") + len(
    "only rows whose inviter or moment changed count.\n"
)
OLD_UPDATE_BRANCH = OLD_FUNCTION[_BRANCH_START : OLD_FUNCTION.index("\n    END IF;\n    RETURN NULL;")]
NEW_UPDATE_BRANCH = """        -- Users given an inviter they did not have: (user, inviter) pairs in the new rows only.
        PERFORM 1 FROM accounts_user
        WHERE id IN (
            SELECT user_id FROM (
                SELECT user_id, invited_by_id, 1 AS side FROM new_rows WHERE invited_by_id IS NOT NULL
                UNION ALL
                SELECT user_id, invited_by_id, -1 FROM old_rows WHERE invited_by_id IS NOT NULL
            ) pairs
            GROUP BY user_id, invited_by_id
            HAVING sum(side) > 0
        )
        ORDER BY id FOR SHARE;
        -- The old and the new inviter of every row whose inviter or moment changed: the versions of
        -- such a row differ, so neither pairs off with the other.
        PERFORM referrals_refresh_recent_invitees(ARRAY(
            SELECT invited_by_id FROM (
                SELECT user_id, invited_by_id, activated_at, 1 AS side FROM new_rows
                UNION ALL
                SELECT user_id, invited_by_id, activated_at, -1 FROM old_rows
            ) versions
            GROUP BY user_id, invited_by_id, activated_at
            HAVING sum(side) <> 0
        ));"""
assert "JOIN new_rows" in OLD_UPDATE_BRANCH and "END IF" not in OLD_UPDATE_BRANCH, "0005's UPDATE branch moved"
NEW_FUNCTION = OLD_FUNCTION.replace(OLD_UPDATE_BRANCH, NEW_UPDATE_BRANCH)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NEW_FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("referrals", "0008_count_invitees_in_the_database")]

    operations = [migrations.RunPython(forward, backward)]
