"""deploy/dagster.postgres.yaml against a REAL PostgreSQL (Debian's package, see postgres.py):
the instance loads with dagster-postgres, a real job of the project runs with Postgres-backed
run/event/schedule storage and its run is in the server's ``runs`` table; a server that is down
or a wrong password gives one clear line from deploy/preflight.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trading_brain_tests.deploy.postgres import PgServer, free_port

pytestmark = pytest.mark.slow
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_a_real_job_runs_with_postgres_run_storage(pg: PgServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg
    import psycopg2

    from trading_brain.adapters.duckdb import Store
    from trading_brain.definitions import defs

    dh = tmp_path / "dagster"
    dh.mkdir()
    shutil.copy(DEPLOY / "dagster.postgres.yaml", dh / "dagster.yaml")
    for k, v in pg.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DAGSTER_HOME", str(dh))
    home = tmp_path / "home"
    Store.open(home / "var" / "warehouse.duckdb")
    monkeypatch.setenv("TRADING_BRAIN_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        job = defs.resolve_job_def("backup_job")
        result = job.execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    con = psycopg2.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password,
                           dbname=pg.db)
    try:
        cur = con.cursor()
        cur.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", [run_id])
        rows = [tuple(r) for r in cur.fetchall()]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s "
                    "AND dagster_event_type = 'ASSET_MATERIALIZATION'", [run_id])
        events = cur.fetchone()[0]
    finally:
        con.close()
    assert rows == [("backup_job", "SUCCESS")] and events == 1
    assert len(list((home / "var" / "backups").glob("warehouse-*.duckdb"))) == 1


def _preflight(env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TRADING_BRAIN_HOME": "/tmp", **env}
    return subprocess.run([sys.executable, str(DEPLOY / "preflight.py"), "--wait", "2"],
                          capture_output=True, text=True, timeout=120, env=full)


def test_preflight_postgres_down_wrong_password_and_up(pg: PgServer) -> None:
    down = _preflight({**pg.env(), "DAGSTER_PG_PORT": str(free_port())})
    lines = down.stderr.strip().splitlines()
    assert down.returncode == 2 and len(lines) == 1, down.stderr
    assert "is not reachable after 2s" in lines[0] and "run storage cannot start" in lines[0]
    wrong = _preflight({**pg.env(), "DAGSTER_PG_PASSWORD": "not-the-password-at-all"})
    lines = wrong.stderr.strip().splitlines()
    assert wrong.returncode == 2 and len(lines) == 1 and "refused user 'dagster'" in lines[0]
    assert "not-the-password-at-all" not in wrong.stderr
    ok = _preflight(pg.env())
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
