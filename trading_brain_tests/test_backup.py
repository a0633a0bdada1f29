"""Backups that restore (trading_brain/app/backup.py, adapters/duckdb/backup.py, engine/backup.py).

Real components: a home that traded (``simulate`` 0.1 day, sandboxed strategy, paper fills),
real DuckDB snapshots, the CLI in-process; each test works on its own copy of that home.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from trading_brain.adapters.duckdb import Store, migrations
from trading_brain.app.backup import backup_now, restore
from trading_brain.app.runtime import build_runtime
from trading_brain.app.serve import acquire_lock
from trading_brain.cli import cli
from trading_brain.engine import backup as rules
from trading_brain.engine.executor.book import slot_invariant
from trading_brain.errors import ConfigError, DataError
from trading_brain.settings import BackupSettings, Home, load_settings

EXE = Path(sys.executable).with_name("trading-brain")
SIM = ["simulate", "--days", "0.1", "--seed", "7", "--start", "2024-03-01T00:00:00Z",
       "--symbols", "BTC/USD,ETH/USD,SOL/USD", "--json"]


@pytest.fixture(scope="module")
def _traded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("traded") / "home"
    res = CliRunner().invoke(cli, ["--home", str(home), *SIM])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["fills"] > 0
    return home


@pytest.fixture
def home(_traded: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "home"
    shutil.copytree(_traded, dst)
    return dst


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(home: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def fails(home: Path, *args: str) -> str:
    """Run the console script as a user does; assert one ``error:`` line and exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    proc = subprocess.run([str(EXE), "--home", str(home), *args], capture_output=True,
                          text=True, env=env, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc
    return lines[0]


def take(home: Path) -> dict:
    res = invoke(home, "backup", "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def reseal(snapshot: Path) -> None:
    """Rewrite the checksum file after a deliberate change (so only the content is judged)."""
    snapshot.with_name(snapshot.name + ".sha256").write_text(
        rules.checksum_text(sha(snapshot), snapshot.name))


def test_backup_then_restore_brings_back_the_state_and_the_invariant_holds(home: Path) -> None:
    snap = take(home)
    path = Path(snap["path"])
    assert snap["sha256"] == sha(path) and snap["schema_version"] == migrations.available()[-1][0]
    assert path.with_name(path.name + ".sha256").read_text() == f"{snap['sha256']}  {path.name}\n"
    store = Store.open(home / "var" / "warehouse.duckdb")
    assert store.execute("SELECT sha256, bytes FROM backups WHERE file_name = ?",
                         [path.name]) == [(snap["sha256"], path.stat().st_size)]
    before = store.execute("SELECT count(*) FROM fills")[0][0]
    assert invoke(home, "halt", "--reason", "after the backup").exit_code == 0
    store.execute("DELETE FROM fills")  # damage after the snapshot: the restore brings it back
    res = invoke(home, "restore", str(path), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert Path(out["kept"]).is_file() and "replaced-" in out["kept"]
    restored = Store.open(home / "var" / "warehouse.duckdb")
    assert restored.execute("SELECT count(*) FROM fills")[0][0] == before > 0
    assert restored.execute("SELECT count(*) FROM risk_events WHERE reason LIKE '%after the "
                            "backup%'")[0][0] == 0
    for slot in restored.known_slots():
        marks = rules.marks_at_cost(restored.positions(slot))
        report = slot_invariant(restored, slot, marks)
        assert report.ok, report.problems
    assert any(p.status == "open" for p in restored.positions("active"))


def test_corrupted_snapshot_is_refused_and_nothing_changes(home: Path) -> None:
    path = Path(take(home)["path"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    wh = home / "var" / "warehouse.duckdb"
    before = sha(wh)
    assert "is corrupt: sha256" in fails(home, "restore", str(path))
    assert sha(wh) == before
    assert not list((home / "var").glob("warehouse.duckdb.replaced-*"))


def test_wrong_files_are_refused(home: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database\n" * 100)
    reseal(text)
    empty = tmp_path / "other.duckdb"
    with duckdb.connect(str(empty)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x").fetchall()
    reseal(empty)
    unsealed = tmp_path / "unsealed.duckdb"
    shutil.copyfile(Path(take(home)["path"]), unsealed)
    wh = home / "var" / "warehouse.duckdb"
    before = sha(wh)
    cases = {text: "not a readable DuckDB warehouse", empty: "not a Trading Brain warehouse",
             unsealed: "no checksum recorded", tmp_path / "missing.duckdb": "does not exist"}
    for path, why in cases.items():
        assert why in fails(home, "restore", str(path))
    assert sha(wh) == before


def test_snapshot_of_another_home_is_refused_unless_allowed(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    # its own warehouse id is what matters: no history, no strategy (test_cli covers a full init)
    assert invoke(other, "init", "--no-bootstrap", "--strategy", "none").exit_code == 0
    path = Path(take(other)["path"])
    wh = home / "var" / "warehouse.duckdb"
    before = sha(wh)
    assert Store(path).get_meta("warehouse_id") not in (None, Store(wh).get_meta("warehouse_id"))
    with pytest.raises(DataError, match="snapshot of another warehouse"):
        restore(Home(home), path)
    assert sha(wh) == before
    assert restore(Home(home), path, allow_other_home=True)["kept"]
    assert Store(wh).get_meta("warehouse_id") == Store(path).get_meta("warehouse_id")


def test_newer_schema_and_broken_ledger_are_refused(home: Path) -> None:
    path = Path(take(home)["path"])
    newer, broken = path.with_name("newer.duckdb"), path.with_name("broken.duckdb")
    shutil.copyfile(path, newer)
    shutil.copyfile(path, broken)
    with duckdb.connect(str(newer)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (99, 'future', now())").fetchall()
    with duckdb.connect(str(broken)) as con:
        con.execute("UPDATE cash_ledger SET amount = amount + 5 WHERE cause <> 'deposit' "
                    "AND slot = 'active'").fetchall()
    reseal(newer)
    reseal(broken)
    with pytest.raises(DataError, match="schema is version 99"):
        restore(Home(home), newer)
    with pytest.raises(DataError, match="ledger invariant broken in slot active"):
        restore(Home(home), broken)


def test_restore_is_refused_while_up_holds_the_lock(home: Path) -> None:
    path = Path(take(home)["path"])
    wh = home / "var" / "warehouse.duckdb"
    before = sha(wh)
    lock = acquire_lock(Home(home), {"pid": 1, "url": "http://x", "started": "now"})
    try:
        assert "trading-brain up is running" in fails(home, "restore", str(path))
        assert sha(wh) == before
    finally:
        lock.close()
    assert invoke(home, "restore", str(path)).exit_code == 0


def test_retention_keeps_the_window_and_the_newest(home: Path) -> None:
    t0 = datetime(2026, 3, 1, 2, 17, tzinfo=UTC)
    settings = load_settings(Home(home))
    settings = settings.model_copy(update={"backup": BackupSettings(retention_days=7)})
    taken = [backup_now(build_runtime(home, now=t0 + timedelta(days=d), settings=settings))
             for d in (0, 3, 12)]
    assert taken[1].removed == ()
    assert taken[2].removed == (taken[0].path.name, taken[1].path.name)
    names = sorted(p.name for p in (home / "var" / "backups").iterdir())
    assert names == [taken[2].path.name, taken[2].path.name + ".sha256"]
    rows = Store(home / "var" / "warehouse.duckdb").execute(
        "SELECT file_name, removed_at IS NOT NULL FROM backups ORDER BY ts")
    assert [r[1] for r in rows] == [True, True, False]


def test_expired_never_drops_the_newest() -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    names = [rules.snapshot_name(now - timedelta(days=d)) for d in (30, 20, 3)]
    assert rules.expired([*names, "other.txt"], now, 7) == names[:2]
    assert rules.expired(names[:2], now, 7) == names[:1]  # both old: the newest stays
    assert rules.snapshot_time("warehouse-2026.duckdb") is None


def test_missing_home_config_is_one_line(tmp_path: Path) -> None:
    assert "not a Trading Brain home" in fails(tmp_path / "nothing", "backup")
    with pytest.raises(ConfigError):
        restore(Home(tmp_path / "nothing"), tmp_path / "x.duckdb")
