"""Read-only, short-lived access to the warehouse for the HTTP API.

Contract:
- every read opens its own ``read_only=True`` connection (``adapters.duckdb.connection.connect``),
  runs its statements to completion and closes it: the file is never held between requests, so
  the writer (executor, scans, ``simulate``) only ever waits for one short read;
- a lock held by the writer is retried with backoff for ``lock_budget_s`` (small: an HTTP
  client is waiting), then ``WarehouseLocked`` is raised (the app answers 503);
- ``batch``/``rows`` answer from a cache for ``cache_ttl_s`` seconds (0 disables it); one
  caller refreshes an expired entry while concurrent callers of the same statements get the
  previous answer (never older than ``cache_ttl_s + lock_budget_s``) or, without one, wait
  for it (single flight): under load the API opens the file a few times per second, not once
  per request, which keeps the writer's lock waits short (README: ``trading-brain api``);
- at most ``max_open`` connections are open at once (requests beyond wait their turn);
- values come back JSON-ready: DECIMAL -> float, timestamps -> ISO-8601 ``Z`` strings, JSON
  columns parsed, NaN/inf -> null.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from trading_brain.adapters.duckdb.connection import connect

JsonScalar = str | int | float | bool | None
Row = dict[str, object]
Statement = tuple[str, Sequence[object]]
Key = tuple[tuple[str, tuple[object, ...]], ...]
MAX_CACHED = 512


def json_value(v: object, type_name: str = "") -> object:
    """One DuckDB value as a JSON-ready Python value."""
    if v is None:
        return None
    if type_name == "JSON" and isinstance(v, str):
        return json.loads(v)
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC)
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    return v


def fetch_rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> list[Row]:
    """Run one statement to completion; rows as JSON-ready dicts."""
    cur = con.execute(sql, list(params))
    cols = [(d[0], str(d[1])) for d in cur.description or []]
    return [{name: json_value(v, t) for (name, t), v in zip(cols, r, strict=True)}
            for r in cur.fetchall()]


class ReadOnlyWarehouse:
    """The warehouse file at ``path``, read through short read-only connections."""

    def __init__(self, path: Path | str, *, lock_budget_s: float = 2.0, cache_ttl_s: float = 1.0,
                 max_open: int = 2, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.lock_budget_s = lock_budget_s
        self.cache_ttl_s = cache_ttl_s
        self._monotonic = monotonic
        self._open = threading.BoundedSemaphore(max_open)
        self._guard = threading.Lock()
        self._flights: dict[Key, threading.Lock] = {}
        self._cache: dict[Key, tuple[float, list[list[Row]]]] = {}
        self.opened = 0  # connections opened so far (the benchmark reports it)

    def batch(self, statements: Sequence[Statement], *, cached: bool = True) -> list[list[Row]]:
        """Run ``statements`` in one short read-only connection; with ``cached``, answer from
        the cache when the same statements were read less than ``cache_ttl_s`` ago. While one
        caller refreshes an entry, the others get the previous answer if it is younger than
        ``cache_ttl_s + lock_budget_s`` (the bound on staleness), else they wait for it."""
        if not cached or self.cache_ttl_s <= 0:
            return self._read(statements)
        key: Key = tuple((sql, tuple(params)) for sql, params in statements)
        with self._guard:
            got = self._cache.get(key)
            flight = self._flights.setdefault(key, threading.Lock())
        age = self._monotonic() - got[0] if got is not None else math.inf
        if got is not None and age < self.cache_ttl_s:
            return got[1]
        if not flight.acquire(blocking=False):  # another caller is reading this key
            if got is not None and age < self.cache_ttl_s + self.lock_budget_s:
                return got[1]
            flight.acquire()
        try:
            hit = self._fresh(key)  # the caller we waited for may have read it
            if hit is not None:
                return hit
            out = self._read(statements)
            with self._guard:
                self._cache[key] = (self._monotonic(), out)
                if len(self._cache) > MAX_CACHED:
                    self._evict()
            return out
        finally:
            flight.release()

    def rows(self, sql: str, params: Sequence[object] = (), *, cached: bool = True) -> list[Row]:
        """One statement's rows (see ``batch``)."""
        return self.batch([(sql, params)], cached=cached)[0]

    def _read(self, statements: Sequence[Statement]) -> list[list[Row]]:
        with self._open:
            with connect(self.path, read_only=True, lock_budget_s=self.lock_budget_s) as con:
                self.opened += 1
                return [fetch_rows(con, sql, params) for sql, params in statements]

    def _fresh(self, key: Key) -> list[list[Row]] | None:
        with self._guard:
            got = self._cache.get(key)
        if got is not None and self._monotonic() - got[0] < self.cache_ttl_s:
            return got[1]
        return None

    def _evict(self) -> None:
        now = self._monotonic()
        for k in [k for k, (t, _) in self._cache.items() if now - t >= self.cache_ttl_s]:
            self._cache.pop(k, None)
            self._flights.pop(k, None)
        if len(self._cache) > MAX_CACHED:  # a burst of distinct queries: start afresh
            self._cache.clear()
            self._flights.clear()
