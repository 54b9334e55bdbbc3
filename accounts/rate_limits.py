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
    hits = CASE WHEN accounts_ratecounter.window_start = excluded.window_start
                THEN accounts_ratecounter.hits + 1 ELSE 1 END,
    window_start = excluded.window_start
RETURNING hits
"""
PURGE = "DELETE FROM accounts_ratecounter WHERE window_start < %s"


def hit(key: str, *, window: int) -> tuple[int, float]:
    """Count one hit of `key`: the hits in the current window so far, and when it ends."""
    now = time.time()
    start = int(now) // window * window
    if settings.REDIS_URL:
        windowed = f"{key}:{start}"
        cache.add(windowed, 0, timeout=window + 1)
        hits = cache.incr(windowed)
    else:
        with connection.cursor() as cursor:
            cursor.execute(UPSERT, [key, start])
            hits = cursor.fetchone()[0]
            if random.random() < 0.001:  # noqa: S311 (not security: spreads the clean-up over requests)
                cursor.execute(PURGE, [start - 86400])
    return hits, start + window
