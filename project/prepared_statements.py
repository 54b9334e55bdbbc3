"""Server-side prepared statements for the hottest reads on PostgreSQL.

psycopg2 sends each statement as text, and PostgreSQL plans it again every time: for the
profile, planning costs more than running it (docs/benchmarks.md). A prepared statement is
planned once per connection and then runs from its cached generic plan.

The first call on a connection sends PREPARE and EXECUTE in one round trip, so a request
costs one statement either way. Prepared statements belong to a server session: behind a
pooler in transaction mode (PgBouncer's default), set DATABASE_PREPARED_STATEMENTS=0.
"""

import re

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections


def fetch_prepared(name: str, sql: str, params: list, *, many: bool) -> list[tuple] | tuple | None:
    """Run `sql` (placeholders $1, $2 ...) as the prepared statement `name` with `params`.

    `name` must be unique to `sql` within the process; `many` fetches every row, else one.
    """
    arguments = ", ".join(["%s"] * len(params))
    execute = f"EXECUTE {name}({arguments})" if params else f"EXECUTE {name}"
    if not settings.DATABASE_PREPARED_STATEMENTS:
        rows = fetch_unprepared(sql, params)
        return rows if many else next(iter(rows), None)
    with connection.cursor() as cursor:
        if name in _prepared_on_this_connection():
            cursor.execute(execute, params)
        else:
            # "%" is psycopg2's placeholder mark; the statement's own must be doubled.
            cursor.execute(f"PREPARE {name} AS {sql.replace('%', '%%')}; {execute}", params)
            _prepared_on_this_connection().add(name)
        return cursor.fetchall() if many else cursor.fetchone()


def _prepared_on_this_connection() -> set[str]:
    # Kept on this thread's connection wrapper (`connection` is a proxy shared by all threads),
    # next to the driver connection they were made on: a reconnect (CONN_MAX_AGE, a broken
    # connection) starts a new server session without them.
    wrapper = connections[DEFAULT_DB_ALIAS]
    state = wrapper.__dict__.get("_prepared_statements")
    if state is None or state[0] is not wrapper.connection:
        state = (wrapper.connection, set())
        wrapper.__dict__["_prepared_statements"] = state
    return state[1]


def _with_named_placeholders(sql: str) -> str:
    return re.sub(r"\$(\d+)", r"%(p\1)s", sql.replace("%", "%%"))


def fetch_unprepared(sql: str, params: list) -> list[tuple]:
    """Every row of `sql` (placeholders $1, $2 ...), planned for this one run."""
    with connection.cursor() as cursor:
        cursor.execute(_with_named_placeholders(sql), {f"p{number}": value for number, value in enumerate(params, 1)})
        return cursor.fetchall()
