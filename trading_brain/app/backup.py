"""Backups that restore: what ``warehouse_backup`` and ``trading-brain backup/restore`` run.

Contract:
- ``backup_now(rt)``: a snapshot into ``[backup] dir`` (relative to the home) with
  ``[backup] retention_days``; a failure (full disk, I/O error) keeps every earlier snapshot,
  becomes one ERROR alert (log + ``notifications`` row, kind ``backup_failure``) and is raised as
  ``OperationalError``;
- ``restore(home, snapshot)`` changes nothing unless every check passes, in this order: ``up`` is
  not running for the home (a non-blocking ``flock`` on ``var/up.lock`` fails while it runs);
  the snapshot's sha256 equals the one recorded (``<snapshot>.sha256`` beside it, else the
  current warehouse's ``backups`` row); it opens read-only as a warehouse of this home with a
  schema this code knows and every slot's ledger invariant holding. Then the file is copied in
  and the replaced warehouse is kept as ``warehouse.duckdb.replaced-<UTC>``.
"""

from __future__ import annotations

import fcntl
from datetime import UTC, datetime
from pathlib import Path

from trading_brain.adapters.duckdb import backup as io
from trading_brain.adapters.duckdb import migrations
from trading_brain.app.runtime import Runtime
from trading_brain.engine import backup as rules
from trading_brain.errors import ConfigError, DataError, OperationalError, TemporaryError
from trading_brain.settings import Home


def backup_dir(rt: Runtime) -> Path:
    d = Path(rt.settings.backup.dir).expanduser()
    return d if d.is_absolute() else rt.home.root / d


def backup_now(rt: Runtime) -> io.Snapshot:
    """Take a snapshot now (see the module contract); alerts and raises on failure."""
    now = rt.clock.now()
    try:
        return io.take_snapshot(rt.store, backup_dir(rt), now, rt.settings.backup.retention_days)
    except OperationalError as e:
        _alert(rt, str(e), now)
        raise


def _alert(rt: Runtime, text: str, now: datetime) -> None:
    from trading_brain.app.notify import Alert, LogNotifier, deliver

    alert = Alert(f"backup:{now.isoformat()}", "ERROR", "backup_failure", "warehouse_backup",
                  text)
    try:
        deliver([alert], [LogNotifier()], rt.store, now)
    except TemporaryError:
        LogNotifier().notify(alert.level, alert.text)


def up_is_running(home: Home) -> bool:
    """Whether ``trading-brain up`` holds this home's lock (``service.acquire_lock``)."""
    path = home.var / "up.lock"
    if not path.exists():
        return False
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def recorded_sha256(home: Home, snapshot: Path) -> str:
    """The digest recorded for ``snapshot``: its ``.sha256`` file, else the ``backups`` table."""
    sums = snapshot.with_name(snapshot.name + rules.CHECKSUM_SUFFIX)
    if sums.is_file():
        return rules.parse_checksum(sums.read_text(encoding="utf-8", errors="replace"),
                                    snapshot.name)
    recorded = (io.recorded_backup_sha256(home.warehouse, snapshot.name)
                if home.warehouse.is_file() else None)
    if recorded is not None:
        return recorded
    raise ConfigError(f"no checksum recorded for {snapshot} (expected {sums.name} beside it); "
                      "refusing to restore an unverified file")


def _current_id(home: Home) -> str | None:
    if not home.warehouse.is_file():
        return None
    try:
        return io.warehouse_id(home.warehouse)
    except (DataError, TemporaryError):
        return None  # a broken or busy current warehouse names nothing


def restore(home: Home, snapshot: Path | str, *, allow_other_home: bool = False,
            now: datetime | None = None) -> dict[str, object]:
    """Replace the warehouse of ``home`` by ``snapshot`` after every check passed."""
    snap = Path(snapshot).expanduser().resolve()
    if up_is_running(home):
        raise ConfigError(f"trading-brain up is running for {home.root}; stop it before a "
                          "restore (nothing was changed)")
    if not snap.is_file():
        raise ConfigError(f"snapshot {snap} does not exist")
    if snap == home.warehouse.resolve():
        raise ConfigError("the snapshot is the warehouse itself")
    want = recorded_sha256(home, snap)
    got = io.sha256_file(snap)
    if got != want:
        raise DataError(f"snapshot {snap.name} is corrupt: sha256 {got[:16]}… but "
                        f"{want[:16]}… was recorded; nothing was changed")
    facts = io.read_facts(snap)
    code_version = migrations.available()[-1][0]
    problems = rules.restore_problems(facts, code_version, _current_id(home), allow_other_home)
    if problems:
        raise DataError(f"refusing to restore {snap.name}: {'; '.join(problems)}; "
                        "nothing was changed")
    when = now or datetime.now(UTC)
    kept = io.replace_warehouse(home.warehouse, snap, want, when)
    return {"restored": str(snap), "sha256": want, "warehouse": str(home.warehouse),
            "kept": str(kept) if kept else None, "schema_version": facts.schema_version,
            "slots_checked": sorted(facts.invariant_problems)}
