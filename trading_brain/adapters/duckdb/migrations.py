"""Numbered schema migrations, applied automatically and recorded in the database.

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own transaction, and
recorded in ``schema_migrations``. A database whose newest applied version is above the code's
newest file was written by newer code and is refused (``OperationalError``); nothing is changed.
Released migration files are never edited; a schema change is a new file.
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

from trading_brain.adapters.duckdb.connection import run, transaction
from trading_brain.errors import OperationalError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the code, in order."""
    folder = resources.files("trading_brain.adapters.duckdb") / "migrations"
    out = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise OperationalError(f"migration files are not numbered 1..N: {versions}")
    return out


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Newest applied migration (0 for an empty database)."""
    run(con, """CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)""")
    return run(con, "SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    migrations = available()
    code_version = migrations[-1][0] if migrations else 0
    db_version = current_version(con)
    if db_version > code_version:
        raise OperationalError(
            f"warehouse schema is version {db_version} but this code knows only up to "
            f"{code_version}; upgrade trading-brain (the database was left unchanged)"
        )
    applied = []
    for version, name, sql in migrations:
        if version <= db_version:
            continue
        with transaction(con):
            for statement in _statements(sql):
                run(con, statement)
            run(con, "INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
        applied.append(version)
    return applied


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]
