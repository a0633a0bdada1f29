"""The README's `dagster job backfill` command queues one scan_job run per day of the range."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from trading_brain.app.serve import prepare_dagster_home
from trading_brain.settings import Home


@pytest.mark.slow
def test_dagster_job_backfill_over_a_date_range(tmp_path, monkeypatch):
    home = Home(tmp_path / "home")
    dh = prepare_dagster_home(home)
    env = {**os.environ, "DAGSTER_HOME": str(dh), "TRADING_BRAIN_HOME": str(home.root)}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "job", "backfill", "-w", str(dh / "workspace.yaml"), "-j", "scan_job",
         "--from", "2026-11-10", "--to", "2026-11-12", "--noprompt"],
        cwd=home.root, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.setenv("DAGSTER_HOME", str(dh))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["2026-11-10", "2026-11-11",
                                                                "2026-11-12"]
    assert {r.job_name for r in runs} == {"scan_job"}
    assert len({r.tags["dagster/backfill"] for r in runs}) == 1
