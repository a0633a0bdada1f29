"""Analysis modules in the sandbox worker (``adapters/sandbox/analysis.py``, the ``analyze`` op).

Real locked-down workers: the shipped analyses give the in-process reports; a crash, an endless
loop, a forged or non-JSON report become ``error``/``timeout`` outcomes (never raised); a module
the static gate refuses never boots; one that escapes the in-language rules (static gate off)
meets the OS lockdown with every canary intact; the analysis pool keeps workers warm.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.adapters.sandbox.analysis import SandboxedAnalysis
from trading_brain.adapters.sandbox.gate import check_source
from trading_brain.adapters.sandbox.pool import SandboxWorkers
from trading_brain.adapters.sandbox.report import check_report
from trading_brain_tests.analyses.helpers import ROOT, candles, load

pytestmark = pytest.mark.slow

HEAD = """import dataclasses
import math

import polars as pl
from pydantic import BaseModel

ANALYSIS_ID = "market_analysis"
VERSION = 9


class Params(BaseModel):
    n: int = 1


"""
ESCAPE = """def _os():
    return dataclasses.fields.__globals__["sys"].modules["os"]


def _read(path):
    os = _os()
    fd = os.open(path, os.O_RDONLY)
    return os.read(fd, 65536).decode("utf-8", "replace")


"""


def _frames() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(3)
    a = candles("BTC/USD", list(100 + np.cumsum(rng.normal(0, 1, 400))))
    b = candles("ETH/USD", list(50 + np.cumsum(rng.normal(0, 0.5, 300))))
    bars = pl.concat([a, b]).with_columns(pl.col("high") + 0.5, pl.col("low") - 0.5)
    trades = pl.DataFrame({
        "position_id": ["p1", "p2"], "slot": ["active"] * 2, "strategy_id": ["ema_cross"] * 2,
        "version": [1, 1], "symbol": ["BTC/USD", "ETH/USD"],
        "entry_time": [bars["ts"][10], bars["ts"][20]], "exit_time": [bars["ts"][60]] * 2,
        "entry_price": [100.0, 50.0], "exit_price": [101.0, 49.0], "quantity": [1.0, 2.0],
        "net_pnl": [0.8, -2.2], "gross_pnl": [1.0, -2.0], "fees": [0.2, 0.2],
        "exit_reason": ["signal", "stop_loss"]})
    return {"candles": bars, "trades": trades}


def _run(body: str, timeout_s: float = 20.0, **kw: object):
    with SandboxedAnalysis(HEAD + body, **kw) as worker:  # type: ignore[arg-type]
        return worker.analyze(_frames(), timeout_s=timeout_s)


@pytest.mark.parametrize("aid", ["market_analysis", "trade_performance"])
def test_shipped_analyses_give_the_in_process_report(aid: str) -> None:
    path = ROOT / aid / "v1.py"
    module = load(aid)
    expected = json.loads(json.dumps(module.analyze(_frames(), module.Params())))
    with SandboxedAnalysis(path.read_text(encoding="utf-8"), filename=str(path)) as worker:
        out = worker.analyze(_frames())
        assert worker.layers.missing_required() == []  # seccomp and Landlock enforced
    assert out.status == "ok" and out.error is None and out.report == expected


def test_a_crash_is_an_error_outcome_with_its_line_and_the_worker_stays() -> None:
    body = "def analyze(frames, params):\n    return {'x': 1 / (params.n - 1)}\n"
    with SandboxedAnalysis(HEAD + body) as worker:
        first = worker.analyze(_frames())
        pid = worker._proc.pid if worker._proc else None
        again = worker.analyze(_frames(), params={"n": 2})
        assert worker._proc is not None and worker._proc.pid == pid  # a clean error keeps it
    assert first.status == "error" and first.report is None
    assert first.error is not None and "ZeroDivisionError" in first.error
    assert "line 16" in first.error
    assert again.status == "ok" and again.report == {"x": 1.0}


def test_an_endless_loop_times_out_and_the_worker_is_killed() -> None:
    body = "def analyze(frames, params):\n    while True:\n        params.n += 1\n"
    with SandboxedAnalysis(HEAD + body) as worker:
        worker.start()
        proc = worker._proc
        out = worker.analyze(_frames(), timeout_s=1.5)
        assert proc is not None and not proc.alive() and worker._proc is None
    assert out.status == "timeout" and out.error == "no report within 1.5 s; worker killed"
    assert not [t for t in threading.enumerate() if t.name == "analysis" and t.is_alive()]


@pytest.mark.parametrize(("body", "why"), [
    ("def analyze(frames, params):\n    return [1, 2]\n", "returned list, not a dict"),
    ("def analyze(frames, params):\n    return {'v': math.nan}\n", "ValueError"),
    ("def analyze(frames, params):\n    return {'f': frames}\n", "not JSON serializable"),
    ("def analyze(frames, params):\n    return {'x': 'a' * 2_000_000}\n", "exceeds the cap"),
])
def test_reports_that_are_not_small_strict_json_are_errors(body: str, why: str) -> None:
    out = _run(body)
    assert out.status == "error" and out.error is not None and why in out.error


def test_the_host_rechecks_a_forged_report() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        check_report({"a": [1, {"b": float("inf")}]})
    with pytest.raises(ValueError, match="deeper"):
        deep: dict = {}
        node = deep
        for _ in range(40):
            node["d"] = node = {}
        check_report(deep)
    assert check_report({"t": "\x1b]52;c;x\x07"}) == {"t": "\\x1b]52;c;x\\x07"}


@pytest.mark.parametrize("body", [
    "import os\n\ndef analyze(frames, params):\n    return {'cwd': os.getcwd()}\n",
    "import subprocess\n\ndef analyze(frames, params):\n    return {'o': subprocess.run('id')}\n",
    "def analyze(frames, params):\n    return {'p': open('/etc/passwd').read()}\n",
])
def test_the_gate_refuses_io_and_the_worker_never_boots(body: str) -> None:
    assert check_source(HEAD + body, kind="analysis")[0]
    with SandboxWorkers() as workers:
        out = _pool_analyze(workers, HEAD + body)
        assert workers.analyses().live() == []
    assert out.status == "error" and out.error and "rejected by the static gate" in out.error


def _pool_analyze(workers: SandboxWorkers, source: str):
    from trading_brain.app.evolve.analyses_run import _failed

    try:
        handle = workers.analyses().get("market_analysis@9", source)
    except Exception as e:  # the gate refuses at admission
        return _failed("error", str(e))
    return handle.analyze(_frames())


@pytest.mark.parametrize("attack", [
    "    return {'env': _read('@@CANARY_ENV@@')}\n",
    "    return {'passwd': _read('/etc/passwd')}\n",
    "    return {'environ': _read('/proc/' + str(_os().getppid()) + '/environ')}\n",
    "    fd = _os().open('@@CANARY_DIR@@/PWNED_@@TOKEN@@', 65)\n    return {'fd': fd}\n",
    "    return {'rc': _os().system('id > @@CANARY_DIR@@/PWNED_@@TOKEN@@')}\n",
    "    return {'pid': _os().fork()}\n",
    "    ctypes = dataclasses.fields.__globals__['sys'].modules['ctypes']\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n    s = libc.socket(2, 1, 0)\n"
    "    port = int('@@CANARY_PORT@@')\n"
    "    addr = bytes([2, 0, port >> 8, port & 255, 127, 0, 0, 1]) + bytes(8)\n"
    "    return {'rc': libc.connect(s, addr, 16), 'errno': ctypes.get_errno()}\n",
], ids=["dotenv", "passwd", "parent-environ", "write-file", "system", "fork", "tcp-connect"])
def test_escapes_past_the_gate_meet_the_lockdown(canaries, attack: str) -> None:
    source = canaries.render(HEAD + ESCAPE + "def analyze(frames, params):\n" + attack)
    assert check_source(source, kind="analysis")[0]  # the gate alone would refuse it
    out = _run_unchecked(source)
    text = json.dumps(out.report) + str(out.error)
    assert canaries.violations([text]) == []
    if out.status == "ok":  # ran, but got nothing: a refused syscall's return code
        assert out.report is not None and (out.report.get("rc", 0) != 0
                                           or out.report.get("errno", 0) != 0)
    else:
        assert out.status == "error"


def _run_unchecked(source: str):
    with SandboxedAnalysis(source, static_gate=False) as worker:
        return worker.analyze(_frames(), timeout_s=20)


def test_the_analysis_pool_keeps_a_warm_worker_per_source() -> None:
    path = ROOT / "trade_performance" / "v1.py"
    source = path.read_text(encoding="utf-8")
    with SandboxWorkers() as workers:
        service = workers.analyses()
        assert workers.analyses() is service
        first = service.get("trade_performance@1", source).analyze(_frames())
        entry = service._live[service.live()[0]]
        pid = entry.worker._proc.pid if entry.worker._proc else None
        second = service.get("trade_performance@1", source).analyze(_frames())
        assert entry.worker._proc is not None and entry.worker._proc.pid == pid
        assert workers.live() == []  # strategies' slots untouched
    assert entry.worker._proc is None  # closed with the runtime's service
    assert first.status == second.status == "ok" and first.report == second.report


def test_a_failed_background_boot_is_reported_once_not_rebooted(tmp_path: Path) -> None:
    body = ("class Boom(BaseModel):\n    x: int = 1 // 0\n\n\n"
            "def analyze(frames, params):\n    return {}\n")
    with SandboxWorkers() as workers:
        out = workers.analyses().get("market_analysis@9", HEAD + body).analyze(_frames())
    assert out.status == "error" and out.error and "ZeroDivisionError" in out.error
    assert "loading the analysis failed" in out.error


def test_the_worker_reads_its_own_memory_map_and_nothing_else_in_proc(canaries) -> None:
    """Landlock grants ``/proc/self/maps`` (read at start-up by the allocator: denied, polars
    code ran 2-3x slower in the worker) and nothing else of /proc: not the worker's environ, not
    its host's map."""
    body = ("def analyze(frames, params):\n    os = _os()\n    out = {}\n"
            "    for p in ('/proc/self/maps', '/proc/self/environ', '/proc/self/status',\n"
            "              '/proc/%d/maps' % os.getppid(), '/proc/meminfo'):\n"
            "        try:\n            out[p] = len(_read(p)) > 0\n"
            "        except OSError as e:\n            out[p] = type(e).__name__\n"
            "    return out\n")
    out = _run_unchecked(HEAD + ESCAPE + body)
    assert out.status == "ok" and out.report is not None
    got = list(out.report.values())
    assert got == [True, "PermissionError", "PermissionError", "PermissionError",
                   "PermissionError"]
    assert canaries.violations([json.dumps(out.report)]) == []
