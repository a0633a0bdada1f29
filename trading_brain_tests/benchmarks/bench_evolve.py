"""Benchmark: one offline evolution cycle over 30 days of 5m bars for 9 symbols (issue 11).

Run: .venv/bin/python -m pytest -o addopts='' -s trading_brain_tests/benchmarks/bench_evolve.py

The home is a fresh sim home (``init``: 30 days of 5m history for the 9 default symbols,
ema_cross@1 deployed) with every shipped strategy registered. The figure is the WHOLE process
``trading-brain --home H evolve --json`` (interpreter start, imports, sandbox workers booted,
benchmarks, analyses, the search with the default sweep sizes, the candidate's registration and
gates); the target is <= 30 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TARGET_S = 30.0


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from trading_brain.cli import main; main()",
                           "--home", str(home), *args], capture_output=True, text=True,
                          check=False, timeout=600)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bench_evolve") / "home"
    for args in (("init", "--json"), ("strategies", "register")):
        out = _cli(home, *args)
        assert out.returncode == 0, out.stderr
    return home


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
          f"({', '.join(g['gate'] + ' ' + g['status'] for g in res['gates'])})")
    assert res["status"] == "done"
    assert wall <= TARGET_S
