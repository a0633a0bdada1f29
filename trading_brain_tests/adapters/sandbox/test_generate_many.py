"""``generate_many``: several symbols in one worker round trip, per-symbol strategy errors, and a
host that refuses a reply which does not answer every symbol exactly once."""

from __future__ import annotations

import json

import polars as pl
import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.adapters.sandbox.protocol import parse_reply
from trading_brain.errors import SandboxViolation, StrategyError
from trading_brain_tests.adapters.sandbox.helpers import (
    LEGIT,
    in_process_generate,
    load_in_process,
    real_bars,
)

pytestmark = pytest.mark.slow

PICKY = '''
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "picky"
VERSION = 1
WARMUP_BARS = 5


class Params(BaseModel):
    size: float = 0.1


def generate(bars, params):
    if bars.height and bars["close"][0] > 1e6:
        raise ValueError("refuses expensive coins")
    n = bars.height
    return pl.DataFrame({"action": ["hold"] * n, "size": [params.size] * n,
                         "stop_loss": [None] * n, "take_profit": [None] * n,
                         "intent": ["swing"] * n, "confidence": [0.5] * n})
'''


def _frames() -> dict[str, pl.DataFrame]:
    bars = real_bars(2400)
    return {"A/USD": bars.slice(0, 700), "B/USD": bars.slice(700, 650),
            "C/USD": bars.slice(1500, 600)}


def test_one_round_trip_gives_what_generate_gives_per_symbol():
    source = (LEGIT / "l3_indicators.py").read_text()
    module = load_in_process(source, "many_l3")
    frames = _frames()
    with SandboxedStrategy(source, timeout_s=30) as s:
        many = s.generate_many(frames, {"rsi_n": 7})
        pid = s._proc.pid
        for sym, bars in frames.items():
            assert many[sym].equals(s.generate(bars, {"rsi_n": 7})), sym
            assert many[sym].equals(in_process_generate(module, bars, {"rsi_n": 7})), sym
        assert s._proc.pid == pid  # the same persistent worker served every call
        assert s.generate_many({}) == {}


def test_a_failing_symbol_is_reported_and_the_others_are_answered():
    frames = _frames()
    frames["B/USD"] = frames["B/USD"].with_columns(pl.col("open", "high", "low", "close") * 100)
    expensive = [s for s, b in frames.items() if b["close"][0] > 1e6]
    assert expensive == ["B/USD"]
    with SandboxedStrategy(PICKY, timeout_s=30) as s:
        out = s.generate_many(frames)
        pid = s._proc.pid
        for sym in frames:
            if sym in expensive:
                assert isinstance(out[sym], StrategyError)
                assert "refuses expensive coins" in str(out[sym])
            else:
                assert out[sym].height == frames[sym].height
        s.generate(frames[[x for x in frames if x not in expensive][0]])
        assert s._proc.pid == pid  # a clean strategy error keeps the worker


def _reply(results) -> bytes:
    return json.dumps({"ok": True, "kind": "signals_many", "results": results}).encode()


@pytest.mark.parametrize("case", ["missing", "both", "forged_runs"])
def test_a_reply_that_does_not_answer_each_symbol_exactly_once_is_a_violation(case):
    frames = _frames()
    n = frames["A/USD"].height
    cols = {"action": {"values": ["hold"], "lengths": [n]}, "size": {"values": [0.1]},
            "stop_loss": {"values": [None]}, "take_profit": {"values": [None]},
            "intent": {"values": ["swing"]}, "confidence": {"values": [0.5]}}
    cols = {k: v if "lengths" in v else {**v, "lengths": [n]} for k, v in cols.items()}
    results = {
        "missing": [{"columns": cols}],
        "both": [{"columns": cols, "error": "x"}, {"error": "y"}, {"error": "z"}],
        "forged_runs": [{"columns": {**cols, "size": {"values": [0.1], "lengths": [10**9]}}},
                        {"error": "y"}, {"error": "z"}],
    }[case]
    with SandboxedStrategy(PICKY, timeout_s=30) as s:
        s.start()
        s._call = lambda *a, **k: parse_reply(_reply(results))
        with pytest.raises(SandboxViolation):
            s.generate_many(frames)
        assert s._proc is None  # the worker was killed; the next call starts a fresh one


def test_bars_that_cannot_be_stacked_are_a_clear_error():
    frames = _frames()
    frames["B/USD"] = frames["B/USD"].with_columns(pl.col("close").cast(pl.String))
    with SandboxedStrategy(PICKY, timeout_s=30) as s, pytest.raises(
            StrategyError, match="do not share one schema"):
        s.generate_many(frames)
