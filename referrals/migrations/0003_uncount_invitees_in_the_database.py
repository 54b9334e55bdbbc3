"""A deleted invitee is uncounted by the database itself, from the row as it is deleted.

The post_delete signal only knew the row as the deletion first read it: when the user's activation
committed in between (the deletion waits for its row lock), the inviter stayed counted. Locking the
row first in pre_delete fixed that, but made deletions take rows in another order than each other
(an inviter and their invitee deleted at once deadlocked). The trigger runs inside the DELETE, after
its lock.

SQLite drops a table's triggers when a migration rebuilds the table: tests/test_referrals.py checks
that the trigger exists, on both databases.
"""

from django.db import migrations

POSTGRESQL_FUNCTION = """
CREATE FUNCTION referrals_uncount_invitee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE referrals_referral SET invitees_count = invitees_count - 1
    WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
FOR EACH ROW WHEN (OLD.invited_by_id IS NOT NULL) EXECUTE FUNCTION referrals_uncount_invitee()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER referrals_uncount_invitee AFTER DELETE ON referrals_referral
FOR EACH ROW WHEN OLD.invited_by_id IS NOT NULL
BEGIN
    UPDATE referrals_referral SET invitees_count = invitees_count - 1
    WHERE user_id = OLD.invited_by_id AND invitees_count > 0;
END
"""
def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        schema_editor.execute(POSTGRESQL_TRIGGER)
    else:
        schema_editor.execute(SQLITE_TRIGGER)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER referrals_uncount_invitee ON referrals_referral")
        schema_editor.execute("DROP FUNCTION referrals_uncount_invitee()")
    else:
        schema_editor.execute("DROP TRIGGER referrals_uncount_invitee")


class Migration(migrations.Migration):
    dependencies = [("referrals", "0002_drop_redundant_inviter_index")]

    operations = [migrations.RunPython(forward, backward)]
