"""Hand-written statements of accounts.services for PostgreSQL, run as prepared statements.

Each replaces ORM calls on a sign-in or code-request path: the ORM spent more of the worker's
time building a statement than PostgreSQL spent running it, and several could become one round
trip. Other databases take the ORM path in accounts.services.
"""

from accounts.models import User

# accounts_lock_phone() is migration 0004's, redefined by 0006 (it tries again when the row it met
# is purged before it can lock it): PhoneChallenge's row, locked (inserted if missing) and read
# with the phone's refusals since the time given. A change to PhoneChallenge's fields needs a new
# version of it.
LOCK_PHONE_SQL = "SELECT locked_id FROM accounts_lock_phone($1, NULL)"
CHALLENGE_FIELDS = ["id", "phone", "code_hash", "expires_at", "attempts"]
USER_FIELDS = [field.attname for field in User._meta.concrete_fields]
# The user's row is read under the lock its refresh token's record takes at the commit anyway (the
# foreign key's FOR KEY SHARE): a deletion must then wait for the sign-in, or the sign-in for the
# deletion, after which it finds no account (a record for a user deleted in between failed the commit).
LOCK_AND_READ_PHONE_SQL = f"""
SELECT l.locked_id, l.locked_code_hash, l.locked_expires_at, l.locked_attempts, l.recent_failures,
       {", ".join(f"u.{field.column}" for field in User._meta.concrete_fields)}
FROM accounts_lock_phone($1, $2) l
LEFT JOIN LATERAL (SELECT * FROM accounts_user WHERE phone = $1 FOR KEY SHARE) u ON true
"""  # noqa: S608 - the model's own column names

# The phone's sends since $2, newest first, each with the phone's refused checks since $2 (one row
# with no send when it has none); its sends and refusals before $2 no longer count and go. The
# SELECT reads from before the DELETEs (one snapshot), hence its own bounds.
RECENT_SENDS_SQL = """
WITH old_refusals AS (DELETE FROM accounts_checkfailure WHERE phone = $1 AND failed_at < $2),
     old_sends AS (DELETE FROM accounts_codesend WHERE phone = $1 AND sent_at < $2),
     refusals AS (SELECT count(*) AS since FROM accounts_checkfailure WHERE phone = $1 AND failed_at >= $2)
SELECT s.sent_at, r.since FROM refusals r
LEFT JOIN accounts_codesend s ON s.phone = $1 AND s.sent_at >= $2
ORDER BY s.sent_at DESC
"""

# One send taken from the hour's budget ($1, below $2 used; the hour's first send creates its row)
# and recorded; no row when the budget is spent. $2 as bigint: its type would otherwise be `used`'s
# integer, and a budget set above 2^31 would fail every code request.
RECORD_SEND_SQL = """
WITH budget AS (
    INSERT INTO accounts_hourlysendbudget AS b (hour, used) SELECT $1, 1 WHERE 0 < $2::bigint
    ON CONFLICT (hour) DO UPDATE SET used = b.used + 1 WHERE b.used < $2::bigint
    RETURNING b.id
)
INSERT INTO accounts_codesend (phone, sent_at) SELECT $3::varchar, $4::timestamptz FROM budget RETURNING id
"""

# The code's state after a check, on the row accounts_lock_phone() locked.
SAVE_CHALLENGE_SQL = (
    "UPDATE accounts_phonechallenge SET code_hash = $2, expires_at = $3, attempts = $4 WHERE id = $1 RETURNING id"
)

# A refused check recorded at $3; the phone's refusals before $2 no longer count and go.
REFUSE_SQL = """
WITH old_refusals AS (DELETE FROM accounts_checkfailure WHERE phone = $1 AND failed_at < $2)
INSERT INTO accounts_checkfailure (phone, failed_at) VALUES ($1, $3) RETURNING id
"""

# An upsert: manage.py purge_expired may have deleted the row while the SMS was on its way.
INSTALL_CODE_SQL = """
INSERT INTO accounts_phonechallenge AS c (phone, code_hash, expires_at, attempts) VALUES ($1, $2, $3, 0)
ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0
RETURNING c.id
"""
