"""Benchmarks of the nightly evolution (issue 11), each a WHOLE ``trading-brain`` process:

- ``evolve --json`` once over 30 days of 5m bars for 9 symbols (a fresh sim home: ``init``
  backfills 30 days, ema_cross@1 deployed, every shipped strategy registered): the interpreter,
  imports, sandbox workers booted, benchmarks, analyses, the search with the default sweep sizes,
  the candidate's registration and gates. Target <= 30 s.
- ``simulate --days N --evolve`` on a fresh home (sim market, 9 symbols, seed 7, from
  2026-10-01; ``N`` = ``TB_BENCH_EVOLVE_DAYS``, default 30): the whole process (target for 30
  days <= 180 s) and every simulated night (``app.promotion_reviews.run_night``, timed inside
  the process). The per-night target, <= 3 s where workers and frames are warm, is asserted on
  the median night after the first (the first boots the workers and registers the shipped families).

Run: ``.venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_evolve.py``
(an idle machine: the figures scale with the load; each test prints ``/proc/loadavg``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

CYCLE_TARGET_S = 30.0
SIMULATE_30_TARGET_S = 180.0
NIGHT_TARGET_S = 3.0
DAYS = float(os.environ.get("TB_BENCH_EVOLVE_DAYS", "30"))

# the CLI with every night timed (stderr: one "night <seconds>" line per simulated night)
TIMED_CLI = """
import sys, time
import trading_brain.app.promotion_reviews as pr
night = pr.run_night
def timed(*a, **k):
    t = time.perf_counter()
    try:
        return night(*a, **k)
    finally:
        print(f"night {time.perf_counter() - t:.3f}", file=sys.stderr, flush=True)
pr.run_night = timed
from trading_brain.cli import main
sys.argv = ["trading-brain", *sys.argv[1:]]
main()
"""


def _cli(home: Path, *args: str, code: str = "from trading_brain.cli import main; main()"
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, "--home", str(home), *args],
                          capture_output=True, text=True, check=False, timeout=3000)


def _load() -> str:
    return Path("/proc/loadavg").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bench_evolve") / "home"
    for args in (("init", "--json"), ("strategies", "register")):
        out = _cli(home, *args)
        assert out.returncode == 0, out.stderr
    return home


@pytest.mark.timeout(1800)  # a benchmark: init backfills 30 days first
def test_offline_cycle_whole_process(base: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(base, home)
    t0 = time.perf_counter()
    out = _cli(home, "evolve", "--json")
    wall = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    print(f"\nevolve --json (9 symbols x 30 days of 5m, offline): {wall:.1f} s whole process; "
          f"{res['decision']['action']} -> {res['candidate']} "
          f"({', '.join(g['gate'] + ' ' + g['status'] for g in res['gates'])}); "
          f"loadavg {_load()}")
    assert res["status"] == "done"
    assert wall <= CYCLE_TARGET_S


@pytest.mark.timeout(3600)  # a benchmark: the whole simulated month
def test_simulate_evolve_whole_process_and_per_night(tmp_path: Path) -> None:
    home = tmp_path / "home"
    t0 = time.perf_counter()
    out = _cli(home, "simulate", "--days", f"{DAYS:g}", "--evolve", "--seed", "7", "--start",
               "2026-10-01T00:00:00Z", "--json",
               code=TIMED_CLI)
    wall = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    nights = [float(line.split()[1]) for line in out.stderr.splitlines()
              if line.startswith("night ")]
    warm = nights[1:]
    median = statistics.median(warm) if warm else float("nan")
    print(f"\nsimulate --days {DAYS:g} --evolve (sim, 9 symbols, seed 7, from 2026-10-01): "
          f"{wall:.1f} s whole process; {len(nights)} nights: first "
          f"{nights[0] if nights else 0:.2f} s, then median {median:.2f} s, max "
          f"{max(warm, default=0):.2f} s, total {sum(nights):.1f} s; "
          f"evolution {res['evolution']}; loadavg {_load()}")
    assert len(nights) == int(DAYS) - 1
    if DAYS >= 30:
        assert wall <= SIMULATE_30_TARGET_S
    assert median <= NIGHT_TARGET_S
