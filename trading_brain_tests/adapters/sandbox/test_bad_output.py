"""Bad strategy output and misbehaviour -> StrategyError with a clear message (never bad signals).

One strategy module whose ``Params.mode`` selects the misbehaviour; one worker serves the clean
error replies (the worker-side checks), and host-side rejections recycle it.
"""

from __future__ import annotations

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.errors import SandboxViolation, StrategyError
from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

pytestmark = pytest.mark.slow
SOURCE = """
from typing import Literal

import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "misbehave"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    mode: Literal["ok", "missing", "extra", "nan", "inf", "size2", "rows", "raise", "dict",
                  "spin", "spam", "ts", "label", "action", "flood"] = "ok"


def generate(bars, params):
    m = params.mode
    n = bars.height
    out = bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.5), stop_loss=pl.lit(0.02),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.5),
    ).select("action", "size", "stop_loss", "take_profit", "intent", "confidence")
    if m == "missing":
        return out.drop("intent")
    if m == "extra":
        return out.with_columns(foo=pl.lit(1))
    if m == "nan":
        return out.with_columns(size=pl.lit(float("nan")))
    if m == "inf":
        return out.with_columns(confidence=pl.lit(float("inf")))
    if m == "size2":
        return out.with_columns(size=pl.lit(2.0))
    if m == "rows":
        return pl.concat([out, out.head(1)])
    if m == "raise":
        raise ValueError("boom at bar " + str(n))
    if m == "dict":
        return {"action": ["hold"] * n}
    if m == "spin":
        while True:
            n += 1
    if m == "spam":
        for _ in range(50):
            print("x" * 100_000)
    if m == "flood":
        while True:
            print("x" * 1_000_000)
    if m == "ts":
        return out.with_columns(ts=bars["ts"].reverse())
    if m == "label":
        return out.with_columns(regime=pl.lit("r" * 40))
    if m == "action":
        return out.with_columns(action=pl.lit("buy"))
    return out
"""

CLEAN = [  # rejected by the worker's checks: a clean error reply, the worker is kept
    ("missing", "missing column(s): intent"),
    ("extra", "unexpected column(s): foo"),
    ("nan", "column 'size' has NaN or infinite values"),
    ("inf", "column 'confidence' has NaN or infinite values"),
    ("rows", "returned 61 rows for 60 bars"),
    ("raise", "ValueError: boom at bar 60 (line 37: raise ValueError"),
    ("dict", "must return a polars DataFrame, got dict"),
    ("ts", "'ts' does not match the input bars"),
]
HOST = [  # structurally fine, rejected by the host's validation: the worker is recycled
    ("size2", "column 'size' has values outside the allowed range"),
    ("action", "column 'action' has 60 value(s) outside"),
]


@pytest.fixture(scope="module")
def strategy():
    s = SandboxedStrategy(SOURCE, timeout_s=5.0)
    yield s
    s.close()


def test_ok_and_stdout_spam_do_not_corrupt_the_protocol(strategy):
    bars = synthetic_bars()
    assert strategy.generate(bars).height == 60
    out = strategy.generate(bars, {"mode": "spam"})  # 5 MB of print() go to stderr
    assert out["action"].to_list() == ["hold"] * 60


@pytest.mark.parametrize(("mode", "fragment"), CLEAN)
def test_clean_error_replies(strategy, mode, fragment):
    strategy.start()
    pid = strategy._proc.pid
    with pytest.raises(StrategyError) as e:
        strategy.generate(synthetic_bars(), {"mode": mode})
    assert fragment in str(e.value) and not isinstance(e.value, SandboxViolation)
    assert strategy._proc is not None and strategy._proc.pid == pid


@pytest.mark.parametrize(("mode", "fragment"), HOST)
def test_host_side_rejections_recycle_the_worker(strategy, mode, fragment):
    with pytest.raises(StrategyError) as e:
        strategy.generate(synthetic_bars(), {"mode": mode})
    assert fragment in str(e.value)
    assert strategy._proc is None  # killed; the next call boots a fresh worker
    assert strategy.generate(synthetic_bars()).height == 60


def test_label_longer_than_32_chars_is_rejected(strategy):
    with pytest.raises(StrategyError, match="longer than 32"):
        strategy.generate(synthetic_bars(), {"mode": "label"})


def test_timeout_is_a_strategy_error_and_recycles(strategy):
    strategy.timeout_s = 1.0
    try:
        with pytest.raises(StrategyError, match="timed out after 1 s"):
            strategy.generate(synthetic_bars(), {"mode": "spin"})
        assert strategy._proc is None
    finally:
        strategy.timeout_s = 5.0
    assert strategy.generate(synthetic_bars()).height == 60


def test_output_flood_is_cut_at_the_cap_not_at_the_timeout(strategy):
    """An endless print loop (the 2 GB case) ends at the output cap with a clear error; without
    the cap it would run until the per-call timeout (60 s here) and report a timeout."""
    strategy.timeout_s = 60.0
    try:
        with pytest.raises(StrategyError) as e:
            strategy.generate(synthetic_bars(), {"mode": "flood"})
    finally:
        strategy.timeout_s = 5.0
    assert "wrote more than 16777216 bytes to stdout/stderr" in str(e.value)
    assert "timed out" not in str(e.value) and not isinstance(e.value, SandboxViolation)
    assert strategy._proc is None  # killed; the next call boots a fresh worker
    assert strategy.generate(synthetic_bars()).height == 60


def test_bars_must_be_a_frame_and_source_xor_path(strategy, tmp_path):
    with pytest.raises(StrategyError, match="polars DataFrame"):
        strategy.generate({"close": [1.0]})
    with pytest.raises(StrategyError, match="exactly one"):
        SandboxedStrategy()
    p = tmp_path / "s.py"
    p.write_text(SOURCE)
    assert SandboxedStrategy(path=p).strategy_id == "misbehave"


def test_load_errors_name_the_line():
    src = SOURCE.replace("WARMUP_BARS = 1\n", "WARMUP_BARS = 1\n\n\ndef helper():\n    return 1\n")
    src += "\n\nclass Broken(BaseModel):\n    x: int = 'not an int' + 1\n"
    with pytest.raises(
        StrategyError, match=r"loading the strategy failed: TypeError.*\(line \d+: x: int"
    ):
        SandboxedStrategy(src).start()


def test_from_settings_uses_the_sandbox_section():
    from trading_brain.settings import SandboxSettings

    s = SandboxedStrategy.from_settings(
        SOURCE, SandboxSettings(allow_weak_isolation=True, call_timeout_s=3.5,
                                validation_budget_s=42)
    )
    assert s.allow_weak_isolation is True and s.timeout_s == 3.5
    assert s.validation_budget_s == 42
    assert (s.strategy_id, s.version, s.warmup_bars) == ("misbehave", 1, 1)  # from the gate
    assert s._proc is None  # nothing spawned until the first call


def test_empty_bars_give_empty_signals(strategy):
    out = strategy.generate(synthetic_bars().head(0))
    assert out.height == 0 and out.columns[0] == "ts" and len(out.columns) == 8
