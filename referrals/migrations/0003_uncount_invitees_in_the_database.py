"""A deleted invitee is uncounted by the database itself, from the row as it is deleted.

The post_delete signal only knew the row as the deletion first read it: when the user's activation
committed in between (the deletion waits for its row lock), the inviter stayed counted. Locking the
row first in pre_delete fixed that but made deletions take rows in another order than each other
(an inviter and their invitee deleted at once deadlocked). A trigger runs inside the DELETE, on the
row it deletes, after the same lock, so the order stays the one deletions always had.

SQLite drops a table's triggers when a migration rebuilds the table: tests/test_admin.py and
tests/test_referral_races.py check the count after deletions on both databases.
"""

from django.db import migrations

POSTGRESQL = (
    """
    CREATE FUNCTION referrals_uncount_invitee() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE referrals_referral SET invitees_count = invitees_count - 1
        WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
    FOR EACH ROW WHEN (OLD.invited_by_id IS NOT NULL) EXECUTE FUNCTION referrals_uncount_invitee()
    """,
)
POSTGRESQL_REVERSE = (
    "DROP TRIGGER referrals_uncount_invitee ON referrals_referral",
    "DROP FUNCTION referrals_uncount_invitee()",
)
SQLITE = (
    """
    CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
    FOR EACH ROW WHEN OLD.invited_by_id IS NOT NULL
    BEGIN
        UPDATE referrals_referral SET invitees_count = invitees_count - 1
        WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
    END
    """,
)
SQLITE_REVERSE = ("DROP TRIGGER referrals_uncount_invitee",)


def run(statements_by_vendor):
    def apply(apps, schema_editor):
        for statement in statements_by_vendor[schema_editor.connection.vendor]:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("referrals", "0002_drop_redundant_inviter_index")]

    operations = [
        migrations.RunPython(
            run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
