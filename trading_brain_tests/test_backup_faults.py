"""A full disk during a backup keeps the old snapshot and alerts; the Dagster asset and schedule.

The full disk is real where this process may mount an 8 MiB tmpfs (root, as in CI), and is
otherwise injected at the file-write boundary (``copy_database``) with the error DuckDB raises.
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb import backup as io
from trading_brain.app.backup import backup_now
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.errors import OperationalError
from trading_brain.settings import BackupSettings, Settings

T1 = datetime(2026, 3, 1, 2, 17, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 2, 17, tzinfo=UTC)


def _runtime(home: Path, now: datetime, backup_dir: Path) -> Runtime:
    settings = Settings(backup=BackupSettings(dir=str(backup_dir)))
    return build_runtime(home, now=now, settings=settings)


def _fill(home: Path, mb: int) -> None:
    """Give the warehouse ``mb`` MiB of incompressible rows."""
    Store.open(home / "var" / "warehouse.duckdb").execute(
        "CREATE TABLE ballast AS SELECT md5(random()::VARCHAR) || md5(i::VARCHAR) AS s "
        f"FROM range({mb * 16_000}) t(i)")


def _assert_failed_cleanly(home: Path, dest: Path, old: Path, old_sha: str) -> None:
    assert hashlib.sha256(old.read_bytes()).hexdigest() == old_sha
    assert sorted(p.name for p in dest.iterdir()) == [old.name, old.name + ".sha256"]
    store = Store(home / "var" / "warehouse.duckdb")
    rows = store.execute("SELECT level, kind, text FROM notifications")
    assert len(rows) == 1 and rows[0][:2] == ("ERROR", "backup_failure")
    assert "no space left on device" in rows[0][2] and "earlier snapshots were kept" in rows[0][2]
    assert store.execute("SELECT count(*) FROM backups")[0][0] == 1


def test_full_disk_injected_keeps_the_old_snapshot_and_alerts(tmp_path: Path, monkeypatch) -> None:
    home, dest = tmp_path / "home", tmp_path / "backups"
    old = backup_now(_runtime(home, T1, dest))

    def enospc(con: duckdb.DuckDBPyConnection, target: Path) -> None:
        target.write_bytes(b"\0" * 4096)  # what a partial write leaves behind
        raise duckdb.IOException(f'Could not write file "{target}": No space left on device')

    monkeypatch.setattr(io, "copy_database", enospc)
    with pytest.raises(OperationalError, match="no space left on device in .*; earlier"):
        backup_now(_runtime(home, T2, dest))
    _assert_failed_cleanly(home, dest, old.path, old.sha256)


@pytest.fixture
def tiny_disk(tmp_path: Path):  # noqa: ANN201
    mnt = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:80]}); "
                    "the injected variant covers the code path")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_real_tmpfs_keeps_the_old_snapshot_and_alerts(tmp_path: Path,
                                                                tiny_disk: Path) -> None:
    home = tmp_path / "home"
    old = backup_now(_runtime(home, T1, tiny_disk))  # an empty warehouse fits in 8 MiB
    _fill(home, 12)
    with pytest.raises(OperationalError, match="no space left on device"):
        backup_now(_runtime(home, T2, tiny_disk))
    _assert_failed_cleanly(home, tiny_disk, old.path, old.sha256)


def test_warehouse_backup_asset_and_schedule(tmp_path: Path, monkeypatch) -> None:
    from trading_brain.definitions import defs
    from trading_brain.defs.operations.backup import warehouse_backup
    from trading_brain.defs.resources import TradingBrainResource

    home = tmp_path / "home"
    Store.open(home / "var" / "warehouse.duckdb")
    result = dg.materialize([warehouse_backup], resources={
        "tb": TradingBrainResource(home=str(home), now="2026-03-01T02:17:00Z")})
    assert result.success
    meta = result.asset_materializations_for_node("warehouse_backup")[0].metadata
    path = Path(meta["path"].value)
    assert path.parent == home / "var" / "backups"
    assert meta["sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest()
    schedule = defs.get_schedule_def("backup_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "17 2 * * *" and schedule.job_name == "backup_job"
    spec = defs.get_assets_def("warehouse_backup")
    assert spec.get_asset_spec().group_name == "operations"
    assert spec.op.pool == "warehouse"
