"""Server-side prepared statements for the hottest reads on PostgreSQL.

psycopg2 sends each statement as text, and PostgreSQL plans it again every time: for the
profile, planning costs more than running it (docs/benchmarks.md). A prepared statement is
planned once per connection and then runs from its cached generic plan.

The first call on a connection prepares the statement, as session setup. Prepared statements
belong to a server session: behind a pooler in transaction mode (PgBouncer's default), set
DATABASE_PREPARED_STATEMENTS=0.
"""

import functools
import re
import zlib

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver


def fetch_prepared(name: str, sql: str, params: list, *, many: bool) -> list[tuple] | tuple | None:
    """Run `sql` (placeholders $1, $2 ...) as a prepared statement named after `name` with `params`.

    `many` fetches every row, else one.
    """
    name = statement_name(name, sql)
    arguments = ", ".join(["%s"] * len(params))
    execute = f"EXECUTE {name}({arguments})" if params else f"EXECUTE {name}"
    if not settings.DATABASE_PREPARED_STATEMENTS:
        rows = fetch_unprepared(sql, params)
        return rows if many else next(iter(rows), None)
    # The cursor first: opening it connects, or replaces a connection that failed its health
    # check (CONN_HEALTH_CHECKS), and what was prepared belongs to the connection it runs on.
    with connection.cursor() as cursor:
        prepared = _prepared_on_this_connection()
        if name not in prepared:
            _prepare(name, sql)
            prepared.add(name)
        cursor.execute(execute, params)
        return cursor.fetchall() if many else cursor.fetchone()


@functools.lru_cache(maxsize=256)
def statement_name(name: str, sql: str) -> str:
    """`name` with a digest of `sql`: a session that outlived a release, behind a pooler, may still
    hold a statement of the old release's SQL, and one name must never stand for two statements."""
    return f"{name}_{zlib.crc32(sql.encode()):08x}"


@receiver(connection_created, dispatch_uid="project.prepared_statements.generic_plans")
def use_generic_plans(sender, connection, **kwargs):
    """Each prepared statement runs its generic plan, planned once per session.

    PostgreSQL otherwise weighs a fresh plan for the parameters of each run against the generic
    one: for a cursor's position it kept choosing to plan again, nearly every run (more
    PostgreSQL CPU, and the worker waiting on it). Only prepared statements heed this setting, and
    only ours are prepared. Session setup like the time zone Django sets: the connection is in
    autocommit here, so no later rollback undoes it.
    """
    if connection.vendor == "postgresql" and settings.DATABASE_PREPARED_STATEMENTS:
        with connection.connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")


def _prepare(name: str, sql: str) -> None:
    # Session setup, once per connection, like the time zone Django sets on connecting: through
    # the driver's own cursor, so a request's statements are counted the same on every connection.
    # Apart from the EXECUTE: a PREPARE outlives a failed transaction, so an EXECUTE that fails
    # on bad input (in the same round trip) would leave a statement behind that nobody recorded.
    # And only if the session lacks it: a PREPARE that fails would abort the request's transaction.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f"PREPARE {name} AS {sql}")


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
