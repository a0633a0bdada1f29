"""Validation has one overall time budget (``sandbox.validation_budget_s``).

A strategy that takes about a second per call, well under the per-call timeout, would keep the
~65 calls of a validation running for a minute or more; with a budget of 3 s the validation ends
with a verdict naming the step that ran out. Which step that is depends on the machine's speed, so
the test accepts any of them; it asserts no duration.
"""

from __future__ import annotations

import re
import time

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.engine.registry import validate_version
from trading_brain.errors import StrategyError
from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

pytestmark = pytest.mark.slow
SLOW = """
import datetime as dt

import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "slow"
VERSION = 1
WARMUP_BARS = 5


class Params(BaseModel):
    seconds: float = 1.0


def generate(bars, params):
    end = dt.datetime.now() + dt.timedelta(seconds=params.seconds)
    while dt.datetime.now() < end:
        pass
    return bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.0),
    ).drop("ts", "open", "high", "low", "close", "volume")
"""
STEPS = "sandbox start|smoke run|determinism|look-ahead|warm-up"


def test_a_slow_strategy_ends_with_a_budget_verdict_naming_the_step():
    src = SandboxedStrategy(SLOW, timeout_s=30, validation_budget_s=3)
    try:
        with pytest.raises(StrategyError) as e:
            validate_version(src, synthetic_bars(200))
        msg = str(e.value)
        assert re.search(rf"time budget of 3 s \(sandbox.validation_budget_s\) ran out in the "
                         rf"({STEPS}) step", msg), msg
        assert src._deadline is None  # cleared: the source is usable without a budget again
        assert src.generate(synthetic_bars(20), {"seconds": 0.0}).height == 20
    finally:
        src.close()


def test_the_deadline_cuts_a_call_short_of_its_own_timeout():
    src = SandboxedStrategy(SLOW, timeout_s=30)
    try:
        src.start()
        src.set_deadline(time.monotonic() + 0.5)
        with pytest.raises(StrategyError, match="time budget ran out during the strategy "
                                                "generate; worker killed"):
            src.generate(synthetic_bars(20), {"seconds": 60.0})
        assert src._proc is None
        with pytest.raises(StrategyError, match="time budget ran out before"):
            src.generate(synthetic_bars(20))
    finally:
        src.close()


def test_a_fast_strategy_validates_within_the_budget():
    src = SandboxedStrategy(SLOW.replace("seconds: float = 1.0", "seconds: float = 0.0"),
                            validation_budget_s=120)
    try:
        out = validate_version(src, synthetic_bars(200))
        assert out["lookahead"]["passed"] and out["warmup"]["passed"]
    finally:
        src.close()
