"""`trading-brain up`: run Dagster (webserver + daemon + code server) for one home.

Contract:
- one ``up`` per home: an exclusive ``flock`` on ``var/up.lock`` held for the process's life; a
  second ``up`` is refused with a message naming the running one (pid, URL, start time);
- ``DAGSTER_HOME`` is ``var/dagster`` with the instance config of ``dagster_yaml()`` (pools:
  every pool — ``warehouse`` included — limited to 1; run retries off; telemetry off);
- the code location is named ``trading_brain`` (schedule/sensor state is keyed by it);
- SIGINT/SIGTERM stop it cleanly: SIGINT is forwarded to ``dagster dev`` (which ignores SIGTERM
  when started from a non-interactive shell, see reference/dagster.md §1.4), then SIGKILL after
  a grace period; children never outlive ``up``.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from trading_brain.errors import ConfigError
from trading_brain.settings import HOME_ENV, Home

SENSOR_TIMEOUT_S = 90  # executor ticks are bounded well below this (DESIGN §6)
GRACE_S = 30

DAGSTER_YAML = """\
# Dagster instance for Trading Brain (written by `trading-brain up`; see reference/dagster.md).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: "dagster/backfill"
        limit: 2
  pools:
    # Every pool gets one slot: `warehouse` (the DuckDB file) serialises all warehouse steps.
    default_limit: 1
    granularity: op
run_retries:
  enabled: false
run_monitoring:
  enabled: true
  max_runtime_seconds: 3600
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 2
retention:
  schedule:
    purge_after_days: 7
  sensor:
    purge_after_days:
      skipped: 1
      failure: 7
      success: -1
"""

WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: trading_brain.definitions
      location_name: trading_brain
"""


def prepare_dagster_home(home: Home) -> Path:
    """Create ``var/dagster`` with dagster.yaml and workspace.yaml; return it."""
    dh = home.dagster_home
    dh.mkdir(parents=True, exist_ok=True)
    (dh / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    (dh / "workspace.yaml").write_text(WORKSPACE_YAML, encoding="utf-8")
    return dh


def dagster_env(home: Home) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DAGSTER_HOME": str(home.dagster_home), HOME_ENV: str(home.root),
                "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": str(SENSOR_TIMEOUT_S)})
    return env


def acquire_lock(home: Home, info: dict) -> IO[str]:
    """Hold ``var/up.lock`` exclusively or raise ConfigError naming the holder."""
    home.var.mkdir(parents=True, exist_ok=True)
    f = open(home.var / "up.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        held = f.read().strip()
        f.close()
        try:
            other = json.loads(held)
            who = f"pid {other['pid']} serving {other['url']} since {other['started']}"
        except (ValueError, KeyError):
            who = "another process"
        raise ConfigError(f"trading-brain up is already running for {home.root}: {who}") from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps(info))
    f.flush()
    return f


def run_up(home: Home, host: str, port: int) -> int:
    """Run ``dagster dev`` for ``home`` until signalled; return its exit code."""
    url = f"http://{host}:{port}"
    lock = acquire_lock(home, {"pid": os.getpid(), "url": url,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    print(f"Trading Brain for {home.root}: Dagster UI at {url} (Ctrl-C stops)", file=sys.stderr)
    dh = prepare_dagster_home(home)
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-w", str(dh / "workspace.yaml"), "-h", host, "-p", str(port)]
    proc = subprocess.Popen(cmd, env=dagster_env(home), cwd=home.root, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stopping = {"at": None}

    def stop(signum: int, frame: object) -> None:
        if stopping["at"] is None:
            stopping["at"] = time.monotonic()
            _signal_group(proc, signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            if stopping["at"] is not None and time.monotonic() - stopping["at"] > GRACE_S:
                _signal_group(proc, signal.SIGKILL)
    finally:
        _signal_group(proc, signal.SIGKILL)  # no orphans, whatever happened
        lock.close()
    return 0 if stopping["at"] is not None else (proc.returncode or 0)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
