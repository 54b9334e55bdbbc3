"""Per-IP request counters that stay exact under concurrency, in every worker and process.

DRF's own throttles read a history from the cache and write it back: concurrent requests
each read the same history, so a burst passes the limit. Here every hit is one atomic
increment in a fixed window: Redis INCR when REDIS_URL is set, else one upsert in the
database (Django's database cache cannot increment atomically).
"""

import random
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection

UPSERT = """
INSERT INTO accounts_ratecounter (key, window_start, hits) VALUES (%s, %s, 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN excluded.window_start > accounts_ratecounter.window_start
                THEN 1 ELSE accounts_ratecounter.hits + 1 END,
    window_start = CASE WHEN excluded.window_start > accounts_ratecounter.window_start
                        THEN excluded.window_start ELSE accounts_ratecounter.window_start END
RETURNING hits, window_start
"""
PURGE = "DELETE FROM accounts_ratecounter WHERE window_start < %s"


def hit(key: str, *, window: int) -> tuple[int, float]:
    """Count one hit of `key`: the hits in the current window so far, and when it ends."""
    now = time.time()
    start = int(now) // window * window
    if settings.REDIS_URL:
        # One MULTI/EXEC: the key is created with its expiry and incremented with nothing in
        # between (Django's cache.incr checks existence first, so an expiry could slip in).
        windowed = cache.make_and_validate_key(f"{key}:{start}")
        with cache._cache.get_client(windowed, write=True).pipeline(transaction=True) as pipe:
            pipe.set(windowed, 0, ex=window + 1, nx=True)
            pipe.incr(windowed)
            _created, hits = pipe.execute()
    else:
        # Windows only move forward, so hosts whose clocks differ a little cannot reset each other.
        with connection.cursor() as cursor:
            cursor.execute(UPSERT, [key, start])
            hits, start = cursor.fetchone()
            if random.random() < 0.001:  # noqa: S311 (not security: spreads the clean-up over requests)
                cursor.execute(PURGE, [start - 86400])
    return hits, start + window
