"""The Dagster definitions equal a committed snapshot, exactly (a renamed asset fails here).

The snapshot (``defs_snapshot.json`` beside this file) lists asset keys with their group, asset
checks with their asset and blocking flag, jobs (with the assets and checks they select),
schedules with cron, job, timezone and default status, sensors with default status and interval,
and resources with their class.
After an intended change, regenerate it and review the diff:

    UPDATE_DEFS_SNAPSHOT=1 .venv/bin/python -m pytest -q -n 0 \
        trading_brain_tests/defs/test_defs_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from trading_brain.definitions import defs

SNAPSHOT = Path(__file__).with_name("defs_snapshot.json")


def describe(d: dg.Definitions) -> dict[str, Any]:
    """A JSON-able description of ``d`` (sorted, so it compares exactly)."""
    graph = d.resolve_asset_graph()
    repo = d.get_repository_def()
    assets = {k.to_user_string(): graph.get(k).group_name
              for k in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())}
    checks = sorted(
        ({"name": k.name, "asset": k.asset_key.to_user_string(),
          "blocking": bool(graph.get_check_spec(k).blocking)} for k in graph.asset_check_keys),
        key=lambda c: (c["asset"], c["name"]))
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in layer.selected_asset_keys),
            "checks": sorted(f"{k.asset_key.to_user_string()}:{k.name}"
                             for k in layer.asset_graph.asset_check_keys)}
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name,
                          "timezone": s.execution_timezone,
                          "default_status": s.default_status.value}
                 for s in sorted(repo.schedule_defs, key=lambda s: s.name)}
    sensors = {s.name: {"default_status": s.default_status.value,
                        "interval_s": s.minimum_interval_seconds}
               for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    resources = {name: type(r).__name__ for name, r in sorted((d.resources or {}).items())}
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules,
            "sensors": sensors, "resources": resources}


def test_definitions_equal_the_committed_snapshot():
    dg.Definitions.validate_loadable(defs)
    got = describe(defs)
    text = json.dumps(got, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_DEFS_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}; run with UPDATE_DEFS_SNAPSHOT=1"
    want = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert got == want, "Dagster definitions changed; see the module docstring to regenerate"


def test_a_renamed_asset_or_changed_check_does_not_match():
    """The comparison is exact: one renamed asset or one non-blocking check is a difference."""
    base = describe(defs)
    renamed = json.loads(json.dumps(base))
    renamed["assets"]["candles_5m_renamed"] = renamed["assets"].pop("candles_5m")
    assert renamed != base
    flipped = json.loads(json.dumps(base))
    flipped["asset_checks"][0]["blocking"] = not flipped["asset_checks"][0]["blocking"]
    assert flipped != base
