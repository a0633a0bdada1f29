"""Short DuckDB connections with a bounded lock retry.

DuckDB lets one process hold the file read-write and then blocks every other process, readers
included. Rules (DESIGN §4):
- open, work, close: a connection never outlives one unit of work (``with connect(...)``);
- a lock held by another process is retried with exponential backoff and jitter
  (``adapters.backoff``) until ``lock_budget_s`` is spent, then ``WarehouseLocked`` (a
  TemporaryError) is raised; any other failure to open is an ``OperationalError`` at once;
- duckdb 2.x keeps an ``execute()`` result "unfinished" until it is fully fetched: always finish
  statements with ``fetchall()`` (see ``run``) and read frames with ``con.sql(...).pl()``.
- ``Connector`` is how a ``Store`` obtains its connections: ``opener(path, config)`` (the
  default) or the Dagster warehouse resource's ``get_connection`` (``defs.resources``), both
  ``connect`` underneath, so every connection keeps the lock-retry budget above.
- in one process, opening and closing connections to one file are serialised (``_file_lock``):
  DuckDB shares one database instance per file among a process's connections and tears it down
  when the last one closes; a thread opening the file during that teardown failed with
  "Unique file handle conflict … already attached". The work itself is not serialised.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl

from trading_brain.adapters.backoff import backoff_delay
from trading_brain.errors import OperationalError, WarehouseLocked

DEFAULT_LOCK_BUDGET_S = 30.0  # how long opening waits for a lock another process holds
LOCK_RETRY_BASE_S, LOCK_RETRY_MAX_S = 0.02, 1.0  # first and longest delay between lock retries
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "lock on file")
_FILE_LOCKS: dict[str, threading.Lock] = {}  # absolute path -> lock held while opening/closing
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path | str) -> threading.Lock:
    key = os.path.abspath(str(path))
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


def _is_lock_error(e: Exception) -> bool:
    return any(m in str(e) for m in _LOCK_MARKERS)


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S,
    config: Mapping[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` (UTC session), yield the connection, always close it.

    ``config`` is passed to ``duckdb.connect`` (DuckDB settings, e.g. the warehouse resource's
    ``connection_config``). A lock held by another process is retried with ``backoff_delay``
    (``LOCK_RETRY_BASE_S`` doubling up to ``LOCK_RETRY_MAX_S``) until ``lock_budget_s`` is spent;
    any other open failure is an ``OperationalError`` at once.
    """
    deadline = time.monotonic() + lock_budget_s
    attempt = 0
    file_lock = _file_lock(path)
    while True:
        try:
            with file_lock:
                con = duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
            break
        except (duckdb.IOException, duckdb.ConnectionException) as e:
            if not _is_lock_error(e):
                raise OperationalError(f"cannot open warehouse {path}: {e}") from e
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLocked(
                    f"warehouse {path} is locked by another process; gave up after "
                    f"{lock_budget_s:.0f}s"
                ) from e
            time.sleep(min(remaining,
                           backoff_delay(attempt, LOCK_RETRY_BASE_S, LOCK_RETRY_MAX_S)))
            attempt += 1
    try:
        run(con, "SET TimeZone='UTC'")
        yield con
    finally:
        with file_lock:
            con.close()


class Connector(Protocol):
    """Opens one short connection (a context manager that closes it)."""

    def __call__(self, *, read_only: bool = False, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S
                 ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


def opener(path: Path | str, config: Mapping[str, Any] | None = None) -> Connector:
    """A ``Connector`` for the DuckDB file at ``path`` (``connect`` with ``config``)."""

    def open_one(*, read_only: bool = False, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S
                 ) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return connect(path, read_only=read_only, lock_budget_s=lock_budget_s, config=config)

    return open_one


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list:
    """Execute one statement to completion and return all its rows."""
    return con.execute(sql, params or []).fetchall()


def frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run a query and return it as a polars frame (zero-copy Arrow)."""
    return con.sql(sql, params=list(params) if params else None).pl()


_OPEN: dict[int, duckdb.DuckDBPyConnection] = {}  # id(con) -> con, while transaction() is open


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, rolling back on any exception; re-entrant per connection.

    Inside an open ``transaction(con)`` on the same connection a nested call is a no-op: it
    neither begins, commits nor rolls back, and an exception leaving it propagates to the
    outermost block, which rolls the whole transaction back (DuckDB also refuses every statement
    of a transaction after a failed one; such an aborted transaction raises at the end instead
    of a COMMIT that would silently roll it back). So a unit of work can batch many callers'
    transactions into one commit (``simulate``: many steps per commit).
    """
    if _OPEN.get(id(con)) is con:
        yield
        return
    run(con, "BEGIN TRANSACTION")
    _OPEN[id(con)] = con
    try:
        try:
            yield
        except BaseException:
            run(con, "ROLLBACK")
            raise
        try:  # a failed statement swallowed inside aborted the transaction: COMMIT would
            run(con, "SELECT 1")  # silently roll it back, so fail loudly instead
        except duckdb.Error:
            run(con, "ROLLBACK")
            raise
        run(con, "COMMIT")
    finally:
        _OPEN.pop(id(con), None)


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``transaction(con)`` is open on ``con``."""
    return _OPEN.get(id(con)) is con
