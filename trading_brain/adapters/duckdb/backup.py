"""Snapshot and restore the DuckDB warehouse file (I/O; the rules are in ``engine.backup``).

Contract:
- ``take_snapshot``: one connection to the warehouse (the caller holds the ``warehouse`` pool or
  is a CLI; a lock held elsewhere is retried like every connection), ``ATTACH`` a new file and
  ``COPY FROM DATABASE`` inside one transaction, so the copy is one consistent state; the copy is
  written to a hidden ``.partial`` name and only renamed to ``warehouse-<UTC>.duckdb`` (with its
  ``.sha256`` beside it) once DuckDB has checkpointed it completely (``DETACH``) and it was
  fsynced. Any failure (a full disk included) removes the partial files and raises
  ``OperationalError``: earlier snapshots are never touched by a failed backup;
- a snapshot is recorded in the ``backups`` table (migration 0007); retention then removes
  expired snapshots (``engine.backup.expired``: never the newest) and marks their rows;
- ``read_facts`` opens a snapshot read-only and reads what a restore checks, ledger invariant
  included; ``replace_warehouse`` swaps the file in, keeping the replaced one as
  ``warehouse.duckdb.replaced-<UTC>``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from trading_brain.adapters.duckdb import migrations
from trading_brain.adapters.duckdb.connection import connect, run
from trading_brain.adapters.duckdb.store import Store
from trading_brain.engine import backup as rules
from trading_brain.engine.executor.book import slot_invariant
from trading_brain.errors import DataError, OperationalError

_ALIAS = "tb_snapshot"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One written snapshot."""

    path: Path
    sha256: str
    bytes: int
    schema_version: int
    ts: datetime
    removed: tuple[str, ...] = ()  # snapshots retention deleted after this one was written

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.bytes,
                "schema_version": self.schema_version, "ts": self.ts.isoformat(),
                "removed": list(self.removed)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def copy_database(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Copy the connection's database into the new file ``target`` (one transaction)."""
    source = run(con, "SELECT current_database()")[0][0]
    run(con, f"ATTACH '{_sql_str(target)}' AS {_ALIAS}")
    try:
        run(con, "BEGIN TRANSACTION")
        try:
            run(con, f'COPY FROM DATABASE "{source}" TO {_ALIAS}')
            run(con, "COMMIT")
        except BaseException:
            run(con, "ROLLBACK")
            raise
    finally:
        run(con, f"DETACH {_ALIAS}")  # checkpoints the copy: a full disk often shows up here


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _failure(e: BaseException, dest: Path) -> OperationalError:
    text = str(e)
    if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in text:
        why = f"no space left on device in {dest}"
    else:
        why = " ".join(text.split())[:300]
    return OperationalError(f"backup failed: {why}; earlier snapshots were kept")


def take_snapshot(store: Store, dest: Path, now: datetime, retention_days: int) -> Snapshot:
    """Write a consistent snapshot of ``store`` into ``dest``, record it, apply retention."""
    name = rules.snapshot_name(now)
    final, tmp = dest / name, dest / f".{name}.partial"
    sums, sums_tmp = dest / f"{name}{rules.CHECKSUM_SUFFIX}", dest / f".{name}.sha256.partial"
    partials = (tmp, Path(f"{tmp}.wal"), sums_tmp)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        _remove(*partials)
        with store.connect() as con:
            version = migrations.current_version(con)
            copy_database(con, tmp)
        if Path(f"{tmp}.wal").exists():
            raise OperationalError("the snapshot was not checkpointed completely")
        _fsync(tmp)
        digest, size = sha256_file(tmp), tmp.stat().st_size
        sums_tmp.write_text(rules.checksum_text(digest, name), encoding="utf-8")
        _fsync(sums_tmp)
        os.replace(tmp, final)
        os.replace(sums_tmp, sums)
        _fsync(dest)
    except (duckdb.Error, OSError, OperationalError) as e:
        _remove(*partials)
        raise _failure(e, dest) from e
    store.execute("INSERT OR REPLACE INTO backups VALUES (?, ?, ?, ?, ?, ?, NULL)",
                  [name, now, str(final), size, digest, version])
    removed = prune(store, dest, now, retention_days)
    return Snapshot(final, digest, size, version, now, tuple(removed))


def prune(store: Store, dest: Path, now: datetime, retention_days: int) -> list[str]:
    """Delete expired snapshots (and their checksum files) in ``dest``; return their names."""
    gone = rules.expired((p.name for p in dest.iterdir()), now, retention_days)
    for name in gone:
        _remove(dest / name, dest / f"{name}{rules.CHECKSUM_SUFFIX}")
    if gone:
        marks = ", ".join("?" for _ in gone)
        store.execute(f"UPDATE backups SET removed_at = ? WHERE file_name IN ({marks})",
                      [now, *gone])
    return gone


class _ReadOnlyStore(Store):
    """A Store whose every connection is read-only (a snapshot under inspection)."""

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().connect(read_only=True) as con:
            yield con


def read_facts(snapshot: Path) -> rules.SnapshotFacts:
    """Open ``snapshot`` read-only: schema version, warehouse id, each slot's invariant."""
    store = _ReadOnlyStore(snapshot, lock_budget_s=2.0)
    try:
        with store.session():
            tables = {r[0] for r in store.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")}
            if "schema_migrations" not in tables:
                return rules.SnapshotFacts(None, None)
            version = store.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            meta = store.execute("SELECT value FROM system_meta WHERE key = 'warehouse_id'") \
                if "system_meta" in tables else []
            problems: dict[str, list[str]] = {}
            if "cash_ledger" in tables:
                for slot in store.known_slots():
                    marks = rules.marks_at_cost(store.positions(slot))
                    problems[slot] = list(slot_invariant(store, slot, marks).problems)
    except (duckdb.Error, OperationalError) as e:  # OperationalError: cannot open it
        raise DataError(f"{snapshot} is not a readable DuckDB warehouse: "
                        f"{' '.join(str(e).split())[:200]}") from e
    return rules.SnapshotFacts(version[0][0], meta[0][0] if meta else None, problems)


def warehouse_id(path: Path) -> str | None:
    """The ``warehouse_id`` of the warehouse at ``path`` (read-only), None when it has none."""
    try:
        with connect(path, read_only=True, lock_budget_s=5.0) as con:
            rows = run(con, "SELECT value FROM system_meta WHERE key = 'warehouse_id'")
    except (duckdb.Error, OperationalError) as e:
        raise DataError(f"{path} is not a readable DuckDB warehouse") from e
    return rows[0][0] if rows else None


def recorded_backup_sha256(warehouse: Path, file_name: str) -> str | None:
    """The sha256 the warehouse's ``backups`` table holds for ``file_name`` (read-only); None
    when it records none or cannot be read (an unreadable warehouse simply records nothing)."""
    try:
        with connect(warehouse, read_only=True, lock_budget_s=5.0) as con:
            rows = run(con, "SELECT sha256 FROM backups WHERE file_name = ?", [file_name])
    except Exception:  # noqa: BLE001 - a broken or foreign file records nothing
        return None
    return rows[0][0] if rows else None


def replace_warehouse(warehouse: Path, snapshot: Path, sha256: str, now: datetime) -> Path | None:
    """Copy ``snapshot`` next to ``warehouse``, check its digest, keep the current file as
    ``<name>.replaced-<UTC>`` and move the copy in; returns the kept file (None if none)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    tmp = warehouse.with_name(f".{warehouse.name}.restoring")
    try:
        shutil.copyfile(snapshot, tmp)
        _fsync(tmp)
        if sha256_file(tmp) != sha256:
            raise OperationalError("the copied snapshot's checksum differs; nothing was replaced")
        kept = None
        if warehouse.exists():
            kept = warehouse.with_name(f"{warehouse.name}.replaced-{now:%Y%m%dT%H%M%SZ}")
            os.replace(warehouse, kept)
            wal = Path(f"{warehouse}.wal")
            if wal.exists():
                os.replace(wal, Path(f"{kept}.wal"))
        os.replace(tmp, warehouse)
        _fsync(warehouse.parent)
        return kept
    except OSError as e:
        raise OperationalError(f"restore failed: {e}; the warehouse was not replaced") from e
    finally:
        tmp.unlink(missing_ok=True)
