"""Issue 14's fault "Postgres lost mid-run / between runs" against a REAL PostgreSQL (postgres.py)
holding Dagster's run, event and schedule storage (deploy/dagster.postgres.yaml), with a small
``sweep_job`` (2 symbols x 20 sets, 2 chunks) run in its own process as a deployment would:

- PostgreSQL stopped mid-run, as soon as ``sweep_plan``'s Parquet export appears (the plan step
  is finishing, chunks come next): the run process exits non-zero naming the lost connection,
  the warehouse gets no ``backtests`` row (only ``sweep_write`` writes, in one transaction, and
  it never started);
- PostgreSQL down between runs: the next run fails at once with the connection error, nothing
  written;
- PostgreSQL back (same data directory): the interrupted run is still STARTED, and may hold a
  slot of the ``warehouse`` pool (its step could not release it); run monitoring fails it and
  frees its slots (``_recover`` does the same here, no daemon runs), then a re-run succeeds and
  writes every row exactly once.

Cost: ~30 s on this 2-core machine (three short runs in subprocesses, each importing Dagster
and booting sandbox workers; a PostgreSQL stop and start; a 1.5 s wait for slot release). The
run processes retry lost connections with a shortened back-off (see ``DRIVER``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.settings import HOME_ENV, Home
from trading_brain_tests.conftest import make_candles
from trading_brain_tests.defs.conftest import write_home
from trading_brain_tests.deploy.postgres import PgServer

pytestmark = pytest.mark.slow
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYMBOLS = ["BTC/USD", "ETH/USD"]
GRID = json.dumps({"fast": [3, 5, 7, 9], "slow": [21, 26, 31, 36, 41]})  # 20 sets
# The run process as deployed, except that dagster-postgres's reconnect back-off (0.2 s doubling
# per attempt, ~6 s for each failed connection) starts at 0.01 s: every retry still happens and
# still fails while PostgreSQL is down, the run only stops waiting ~6 s between them (that was
# ~45 s of this test).
DRIVER = """
import json, sys
import dagster as dg
import dagster_postgres.utils as pg_utils
_delay = pg_utils.calculate_delay
pg_utils.calculate_delay = lambda **kw: _delay(**{**kw, "base_delay": 0.01})
from trading_brain_tests.deploy.test_sweep_fanout import sweep_job_for_home
ops = json.loads(sys.argv[1])
with dg.DagsterInstance.get() as inst:
    res = sweep_job_for_home().execute_in_process(run_config={"ops": ops}, instance=inst)
    print(json.dumps({"run_id": res.run_id, "rows": len(res.output_for_node("sweep_write"))}))
"""
OPS = {"sweep_plan": {"config": {"strategy": "ema_cross@1", "grid_json": GRID,
                                 "symbols": SYMBOLS, "chunk_size": 20}}}


def _pg_ctl(pg: PgServer, *args: str) -> None:
    opts = (f"-c listen_addresses=127.0.0.1 -c port={pg.port} "
            f"-c unix_socket_directories={pg.root} -c fsync=off")
    out = pg._run(str(pg.bindir / "pg_ctl"), "-D", str(pg.data), "-o", opts,  # noqa: SLF001
                  "-l", str(pg.root / "log"), "-w", "-t", "60", *args)
    assert out.returncode == 0, out.stderr


@pytest.fixture
def env(pg: PgServer, tmp_path: Path) -> dict[str, str]:
    dh = tmp_path / "dagster"
    dh.mkdir()
    shutil.copy(DEPLOY / "dagster.postgres.yaml", dh / "dagster.yaml")
    home = write_home(tmp_path / "home")
    store = Store.open(home.warehouse)
    for i, sym in enumerate(SYMBOLS):
        store.upsert_candles(make_candles(sym, "5m", n=864, seed=i, price=100.0 * (i + 1)))
    return {**os.environ, **pg.env(), "DAGSTER_HOME": str(dh), HOME_ENV: str(home.root)}


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(OPS)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(env: dict[str, str]) -> int:
    return Store.open(Home(env[HOME_ENV]).warehouse).execute(
        "SELECT count(*) FROM backtests")[0][0]


def test_postgres_lost_mid_run_then_back(pg: PgServer, env: dict[str, str]) -> None:
    exports = Home(env[HOME_ENV]).var / "exports" / "candles"
    proc = _start(env)
    try:
        deadline = time.monotonic() + 180
        while not (exports.exists() and any(not p.name.startswith(".")
                                            for p in exports.iterdir())):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "sweep_plan never exported"
            time.sleep(0.05)
        _pg_ctl(pg, "-m", "fast", "stop")  # mid-run: the export is written
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    last = err.strip().splitlines()[-1]
    assert "OperationalError" in last or "connection" in last.lower(), last
    assert _rows(env) == 0  # sweep_write never ran: no half-written results

    down = _start(env)  # between runs: still down
    out, err = down.communicate(timeout=300)
    assert down.returncode != 0 and "Connection refused" in err, err[-2000:]
    assert _rows(env) == 0

    _pg_ctl(pg, "start")
    orphans = _recover(env)  # what run monitoring does for a run whose worker died
    again = _start(env)
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err[-3000:]
    done = json.loads(out.strip().splitlines()[-1])
    assert done["rows"] == 40 and _rows(env) == 40
    assert orphans and done["run_id"] not in orphans

    import psycopg2

    con = psycopg2.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password,
                           dbname=pg.db)
    try:
        cur = con.cursor()
        cur.execute("SELECT run_id, status FROM runs WHERE pipeline_name = 'sweep_job'")
        runs = dict(cur.fetchall())
    finally:
        con.close()
    assert runs.pop(done["run_id"]) == "SUCCESS"
    assert list(runs.values()) == ["FAILURE"]  # the interrupted run, marked failed


def _recover(env: dict[str, str]) -> list[str]:
    """What the daemon's run monitoring does for runs whose worker died: fail each run left
    STARTED, then (``free_slots_after_run_end_seconds`` after its end, here 1 s instead of the
    deployed 60 s) give back its pool slots, with the daemon's own iteration. Without the second
    part a ``warehouse`` slot the dead run claimed stays claimed and every later warehouse step
    (the re-run's sweep_plan) waits forever: that hang is what this test first found."""
    import logging
    from types import SimpleNamespace

    import dagster as dg
    import yaml
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration

    monitoring = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())["run_monitoring"]
    assert monitoring["free_slots_after_run_end_seconds"] > 0
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        with dg.DagsterInstance.get() as inst:
            started = inst.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            held = inst.event_log_storage.get_concurrency_run_ids()
            print(f"runs left STARTED: {len(started)}; runs holding pool slots: {len(held)}")
            for run in started:
                inst.report_run_failed(run, "run worker lost PostgreSQL mid-run")
            settings = {**inst.get_settings("run_monitoring"),
                        "free_slots_after_run_end_seconds": 1}
            original = inst.get_settings
            mp.setattr(inst, "get_settings",
                       lambda key: settings if key == "run_monitoring" else original(key))
            time.sleep(1.5)
            list(execute_concurrency_slots_iteration(
                SimpleNamespace(instance=inst), logging.getLogger("run_monitoring")))  # type: ignore[arg-type]
            assert not inst.event_log_storage.get_concurrency_run_ids()
            return [r.run_id for r in started]
