"""Writes that PostgreSQL failed as a deadlock, taken again.

PostgreSQL breaks a cycle of lock waits by failing one of the transactions in it, which it rolls
back whole; the other goes on. Where a write cannot take its rows in the order every other write
does (a deletion follows the foreign keys, triggers lock what they rebuild), running it once more
is the way out that PostgreSQL's documentation gives.
"""

import functools

from django.db import OperationalError, connection
from psycopg2.errorcodes import DEADLOCK_DETECTED

ATTEMPTS = 3


def is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "pgcode", None) == DEADLOCK_DETECTED


def retried_on_deadlock(func):
    """Call `func` again when it fails as a deadlock, up to ATTEMPTS times in all.

    Only outside a transaction: inside a caller's, the locks of the failed attempt are still held
    and the transaction cannot go on, so the error goes to the caller."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if attempt == ATTEMPTS or not is_deadlock(exc) or connection.in_atomic_block:
                    raise

    return wrapper
