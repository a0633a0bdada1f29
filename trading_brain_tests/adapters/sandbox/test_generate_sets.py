"""``generate_sets``: several parameter sets over the same bars in ONE worker round trip (the bars
sent once), equal to one ``generate`` per set; per-set strategy, params and reply-cap errors;
a timeout or an output flood in any set kills the worker; the host reads one frame per set and
refuses an oversize frame or trailing bytes."""

from __future__ import annotations

import sys

import polars as pl
import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.adapters.sandbox.process import WorkerDied, WorkerProcess
from trading_brain.adapters.sandbox.protocol import SignalsReply
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT
from trading_brain.errors import StrategyError
from trading_brain_tests.adapters.sandbox.helpers import real_bars, synthetic_bars

pytestmark = pytest.mark.slow

EMA_CROSS = (STRATEGIES_ROOT / "ema_cross" / "v1.py").read_text()

HOSTILE = '''
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "hostile"
VERSION = 1
WARMUP_BARS = 5


class Params(BaseModel):
    mode: str = "ok"


def generate(bars, params):
    n = bars.height
    if params.mode == "raise":
        raise ValueError("refuses this set")
    if params.mode == "short":
        n -= 1
    if params.mode == "spin":
        total = 0
        for i in range(10**10):
            total += i
    if params.mode == "flood":
        for _ in range(100000):
            print("x" * 1000)
    confidence = [0.5] * n
    if params.mode == "noisy":  # no run-length encoding: a big reply
        confidence = [(i % 7) / 7 for i in range(n)]
    return pl.DataFrame({"action": ["hold"] * n, "size": [0.1] * n,
                         "stop_loss": [None] * n, "take_profit": [None] * n,
                         "intent": ["swing"] * n, "confidence": confidence})
'''


def test_equal_to_one_generate_per_set_on_real_data():
    bars = real_bars(8000, "binance_SOLUSDT_5m_2024H1.csv.gz")
    sets = [{"fast": f, "slow": s} for f, s in ((3, 21), (9, 30), (12, 48), (30, 10), (5, 99))]
    with SandboxedStrategy(EMA_CROSS, timeout_s=30) as s:
        calls = s._calls
        got = s.generate_sets(bars, sets)
        assert s._calls == calls + 1  # one round trip
        pid = s._proc.pid
        for p, out in zip(sets, got, strict=True):
            if p["fast"] >= p["slow"]:
                assert isinstance(out, StrategyError)
                with pytest.raises(StrategyError) as one:
                    s.generate(bars, p)
                assert str(out) == str(one.value) and str(out).startswith("invalid params")
            else:
                assert isinstance(out, pl.DataFrame)
                assert out.equals(s.generate(bars, p)), p
        assert s._proc.pid == pid  # a clean per-set error keeps the worker
        assert s.generate_sets(bars, []) == []


def test_the_bars_are_sent_once():
    bars = synthetic_bars(300)
    sent: list[bool] = []
    with SandboxedStrategy(HOSTILE, timeout_s=30) as s:
        real = s._bars_request

        def spy(header, frame):
            header, payload = real(header, frame)
            sent.append(payload is not None)
            return header, payload

        s._bars_request = spy
        s.generate_sets(bars, [{}, {}])
        s.generate_sets(bars, [{}])
        s.generate(bars)
        s.generate_sets(bars.clone(), [{}])  # another frame object: sent again
    assert sent == [True, False, False, True]


def test_a_hostile_strategy_gets_its_errors_per_set():
    bars = synthetic_bars(200)
    sets = [{}, {"mode": "raise"}, {"mode": "short"}, {"mode": 7}, {"mode": "ok"}, None]
    with SandboxedStrategy(HOSTILE, timeout_s=30) as s:
        got = s.generate_sets(bars, sets)
        pid = s._proc.pid
    assert [type(g).__name__ for g in got] == ["DataFrame", "StrategyError", "StrategyError",
                                               "StrategyError", "DataFrame", "DataFrame"]
    assert "ValueError: refuses this set" in str(got[1])
    assert "row" in str(got[2])
    assert str(got[3]).startswith("invalid params")
    assert pid


def test_the_reply_cap_applies_to_each_set():
    bars = synthetic_bars(3000)
    with SandboxedStrategy(HOSTILE, timeout_s=30, max_reply_bytes=16_384) as s:
        got = s.generate_sets(bars, [{}, {"mode": "noisy"}, {}])
        assert isinstance(got[0], pl.DataFrame) and isinstance(got[2], pl.DataFrame)
        assert isinstance(got[1], StrategyError) and "exceeds the reply cap" in str(got[1])
        with pytest.raises(StrategyError, match="exceeds the reply cap"):
            s.generate(bars, {"mode": "noisy"})  # the same verdict as one call


@pytest.mark.parametrize(("mode", "message"), [("spin", "timed out after 1 s"),
                                               ("flood", "bytes to stdout/stderr")])
def test_a_timeout_or_a_flood_in_one_set_kills_the_worker(mode, message):
    bars = synthetic_bars(100)
    with SandboxedStrategy(HOSTILE, timeout_s=1.0) as s:
        s.start()
        with pytest.raises(StrategyError, match=message):
            s.generate_sets(bars, [{}, {"mode": mode}, {}])
        assert s._proc is None
        assert isinstance(s.generate_sets(bars, [{}])[0], pl.DataFrame)  # a fresh worker


FAKE = r'''
import json, os, struct, sys
os.read(0, 1 << 20)
ok = json.dumps({"ok": True, "kind": "signals", "columns": {
    "action": {"values": ["hold"]}, "size": {"values": [0.1]},
    "stop_loss": {"values": [None]}, "take_profit": {"values": [None]},
    "intent": {"values": ["swing"]}, "confidence": {"values": [0.5]}}}).encode()
frames = {"big": [ok, ok + b" " * 5000], "trailing": [ok, ok, b"x"]}[sys.argv[1]]
sys.stdout.buffer.write(b"".join(struct.pack(">I", len(f)) + f for f in frames))
sys.stdout.flush()
os.read(0, 1)
'''


@pytest.mark.parametrize(("case", "message"), [("big", "exceeds the cap"),
                                               ("trailing", "trailing bytes")])
def test_the_host_reads_one_capped_frame_per_set(tmp_path, case, message):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    proc = WorkerProcess([sys.executable, str(script), case], {}, str(tmp_path), 4096)
    try:
        replies = proc.replies(b"{}", None, 10.0, 2)
        assert isinstance(next(replies), SignalsReply)
        with pytest.raises(WorkerDied, match=message):
            list(replies)
    finally:
        proc.kill()
