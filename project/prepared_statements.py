"""Server-side prepared statements for the hottest reads on PostgreSQL.

psycopg2 sends each statement as text, and PostgreSQL plans it again every time: for the
profile, planning costs more than running it (docs/benchmarks.md). A prepared statement is
planned once per connection and then runs from its cached generic plan.

The first call on a connection prepares the statement, as session setup. Prepared statements
belong to a server session: behind a pooler in transaction mode (PgBouncer's default), set
DATABASE_PREPARED_STATEMENTS=0.

batched_transaction() sends a transaction's BEGIN and COMMIT along with its statements, where
psycopg2 would give each a round trip of its own.
"""

import functools
import itertools
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, Error, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.db.transaction import TransactionManagementError
from django.dispatch import receiver
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS


def fetch_prepared(name: str, sql: str, params: list, *, many: bool) -> list[tuple] | tuple | None:
    """Run `sql` (placeholders $1, $2 ...) as a prepared statement named after `name` with `params`.

    `many` fetches every row, else one.
    """
    name = statement_name(name, sql)
    execute = _execute_text(name, params)
    if not settings.DATABASE_PREPARED_STATEMENTS:
        rows = fetch_unprepared(sql, params)
        return rows if many else next(iter(rows), None)
    batch = _current_batch()
    if batch is not None:
        batch.refuse_inside_atomic()  # before anything, preparing included, goes out
    # The cursor first: opening it connects, or replaces a connection that failed its health
    # check (CONN_HEALTH_CHECKS), and what was prepared belongs to the connection it runs on.
    with connection.cursor() as cursor:
        _ensure_prepared(name, sql)
        if batch is None:
            cursor.execute(execute, params)
        else:
            batch.send(cursor, execute, params)
        return cursor.fetchall() if many else cursor.fetchone()


def run_prepared(name: str, sql: str, params: list) -> None:
    """Run `sql` like fetch_prepared, for its effect alone: in a batched transaction it waits to go
    out with the transaction's next statement, or with its COMMIT."""
    batch = _current_batch()
    if batch is None or batch.commit_first:
        fetch_prepared(name, sql, params, many=False)
        return
    batch.refuse_inside_atomic()
    name = statement_name(name, sql)
    with connection.cursor():  # connects first, as in fetch_prepared
        _ensure_prepared(name, sql)
    batch.waiting.append((_execute_text(name, params), params))


def _execute_text(name: str, params: list) -> str:
    return f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"


def _ensure_prepared(name: str, sql: str) -> None:
    prepared = _prepared_on_this_connection()
    if name not in prepared:
        _prepare(name, sql)
        prepared.add(name)


@dataclass
class _Batch:
    outermost: bool  # the transaction itself, not a savepoint in one
    atomic_depth: int  # the atomic blocks open around it
    opening: str  # BEGIN or SAVEPOINT: goes out with the first statement that does
    closing: str  # COMMIT or RELEASE: goes out with the statements still waiting
    undo: str  # instead of the closing, when something raised
    waiting: list[tuple[str, list]] = field(default_factory=list)
    opened: bool = False
    sending: bool = False
    commit_first: bool = False  # the closing goes out with the next round trip, ahead of its statement
    closed: bool = False

    def send(self, cursor, statement: str | None = None, params: list | None = None) -> None:
        """The opening (if not yet sent), the statements waiting, the closing (once asked for) and
        `statement`: one round trip."""
        parts = [] if self.opened else [self.opening]
        values: list = []
        for text, waiting_params in self.waiting:
            parts.append(text)
            values += waiting_params
        if self.commit_first:
            parts.append(self.closing)
        if statement is not None:
            parts.append(statement)
            values += params or []
        # Composed first, so that a parameter the driver cannot adapt fails before anything is sent.
        with connection.wrap_database_errors:
            query = cursor.mogrify("; ".join(parts), values)
        self.sending, self.opened = True, True
        self.waiting.clear()
        try:
            cursor.execute(query)
        finally:
            self.sending = False
        if self.commit_first:
            self.closed = True
            connections[DEFAULT_DB_ALIAS].__dict__.pop("_batch", None)  # what follows runs on its own

    def before_other_statements(self, execute, sql, params, many, context):
        # A statement of the ORM's (or any other) runs in the transaction too, after what waits;
        # sent on a cursor of its own (the statement's may be a server-side cursor).
        if not self.sending and not self.closed:
            self.refuse_inside_atomic()
            if not self.opened or self.waiting or self.commit_first:
                with context["connection"].cursor() as cursor:
                    self.send(cursor)
        return execute(sql, params, many, context)

    def refuse_inside_atomic(self) -> None:
        # An atomic block inside an outermost batch would have psycopg2 send a BEGIN (which the
        # server ignores, warning) and then a COMMIT that ends the batch's transaction early. Its
        # first statement is refused before anything goes out, and the batch is rolled back; in a
        # savepoint batch (tests) too, so that tests meet what production would.
        if len(connection.atomic_blocks) > self.atomic_depth or (self.outermost and not connection.get_autocommit()):
            raise TransactionManagementError(
                "transaction.atomic() inside a batched transaction (or an ORM call that opens one: "
                "get_or_create, bulk_create, ...)"
            )


def commit_before_next_statement() -> None:
    """End the batched transaction with the next statement's round trip: COMMIT goes out ahead of it,
    and it and everything after it run on their own. Outside a batched transaction, nothing."""
    batch = _current_batch()
    if batch is not None:
        batch.commit_first = True


@contextmanager
def batched_transaction() -> Iterator[None]:
    """transaction.atomic() in fewer round trips, for prepared statements on PostgreSQL.

    psycopg2 sends a transaction's BEGIN and COMMIT as round trips of their own; each costs the
    worker and PostgreSQL about as much as a short statement. Here BEGIN goes out with the first
    statement, run_prepared()'s statements wait for the next one, and COMMIT goes with the last.
    Any other statement through Django's cursors (the ORM's) first sends what waits, so everything
    runs in order.

    Inside a transaction already (a caller's atomic block, or a test's), a savepoint stands for
    the transaction, as in a nested atomic block. An outermost batch keeps Django in autocommit
    while the server holds the transaction, so inside one: no transaction.atomic(), nor the ORM
    calls that open one (get_or_create, update_or_create, bulk_create, most deletes), refused
    with TransactionManagementError before they send anything (in a savepoint batch too, where
    they would work, so that tests meet what production does); no select_for_update() (Django
    refuses it in autocommit); and transaction.on_commit() runs its function at once. Elsewhere
    (SQLite, DATABASE_PREPARED_STATEMENTS off) this is transaction.atomic().
    """
    if not batches_round_trips():
        with transaction.atomic():
            yield
        return
    if _current_batch() is not None:
        raise TransactionManagementError("batched transactions do not nest")
    outermost = connection.get_autocommit() and not connection.in_atomic_block
    depth = len(connection.atomic_blocks)
    if outermost:
        batch = _Batch(True, depth, "BEGIN", "COMMIT", "ROLLBACK")
    else:
        name = f"batch_{next(_savepoint_numbers)}"
        undo = f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        batch = _Batch(False, depth, f"SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}", undo)
    connections[DEFAULT_DB_ALIAS].__dict__["_batch"] = batch
    try:
        with connection.execute_wrapper(batch.before_other_statements):
            yield
            if not batch.closed and (batch.opened or batch.waiting):
                if (
                    batch.outermost
                    and batch.opened
                    and connection.connection.info.transaction_status != TRANSACTION_STATUS_INTRANS
                ):
                    # Aborted by an error that the code inside caught, or ended by a COMMIT sent behind its back.
                    raise TransactionManagementError("the batched transaction failed or ended before its COMMIT")
                batch.commit_first = True
                with connection.cursor() as cursor:
                    batch.send(cursor)
    except BaseException:
        if batch.opened and not batch.closed:
            _undo(batch)
        raise
    finally:
        connections[DEFAULT_DB_ALIAS].__dict__.pop("_batch", None)
        if batch.outermost and not _idle():
            connection.close()  # whatever happened (an interrupted undo), no request may inherit the transaction


def _idle() -> bool:
    return _session_gone() or connection.connection.info.transaction_status == TRANSACTION_STATUS_IDLE


def _session_gone() -> bool:
    return connection.connection is None or bool(connection.connection.closed)


def batches_round_trips() -> bool:
    """Whether batched_transaction() saves round trips here; elsewhere it is transaction.atomic()."""
    return connection.vendor == "postgresql" and settings.DATABASE_PREPARED_STATEMENTS


def _undo(batch: _Batch) -> None:
    batch.waiting.clear()
    if _session_gone():
        return  # the server ended the session, and the transaction with it: the original error stands
    try:
        with connection.cursor() as cursor:
            batch.sending = True
            cursor.execute(batch.undo)
    except Error:
        if batch.outermost:
            connection.close()  # a connection that may still hold the transaction must not serve the next request
    finally:
        batch.sending = False


_savepoint_numbers = itertools.count(1)


def _current_batch() -> _Batch | None:
    return connections[DEFAULT_DB_ALIAS].__dict__.get("_batch")


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
    PostgreSQL CPU, and the worker waiting on it). Every plan the session caches heeds it: ours,
    and the statements of PL/pgSQL triggers and of foreign keys' actions, which are then planned
    without their values too (referrals/0011 keeps their estimates sane). Session setup like the
    time zone Django sets: the connection is in autocommit here, so no later rollback undoes it.
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
