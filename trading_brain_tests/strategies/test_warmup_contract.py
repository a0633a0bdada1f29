"""``WARMUP_BARS`` must be at least 1: the live scan passes the last WARMUP_BARS bars and decides
on the last row. 0 used to crash ``strategies validate`` ("cannot compare 1 rows with 0 rows"):
now the static gate refuses it as a contract finding (as the in-process loader already did), and
the warm-up check itself fails cleanly instead of crashing for any source that reports 0."""

from __future__ import annotations

import polars as pl
import pytest

from trading_brain.adapters.sandbox.gate import check_source
from trading_brain.app.research.strategy_files import InProcessStrategy
from trading_brain.engine.lookahead import check_warmup
from trading_brain.engine.registry import validate_version
from trading_brain.errors import StrategyError
from trading_brain_tests.strategies.test_strategy_api import GOOD, ROOT, bars, write


class ZeroWarmup:
    """A source that claims WARMUP_BARS = 0 (what a gate-less sandbox worker may report)."""

    def __init__(self, inner: InProcessStrategy) -> None:
        self.inner, self.strategy_id, self.version, self.warmup_bars = inner, "tiny", 2, 0

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        return self.inner.generate(bars, params)


@pytest.fixture
def zero(tmp_path):
    return ZeroWarmup(InProcessStrategy(write(tmp_path, GOOD)))


def test_the_gate_requires_at_least_one_warmup_bar():
    src = (ROOT / "strategies" / "ema_cross" / "v1.py").read_text()
    assert check_source(src)[0] == []
    found, info = check_source(src.replace("WARMUP_BARS = 1200", "WARMUP_BARS = 0"))
    assert info is None and [f.rule for f in found] == ["contract"]
    assert found[0].text.startswith("WARMUP_BARS = <int >= 1> (the live scan passes the last")


def test_check_warmup_with_zero_bars_is_a_failed_check(zero):
    report = check_warmup(zero, bars(40), zero.warmup_bars)
    assert not report.passed and report.points == ()
    assert "WARMUP_BARS = 0: it must be at least 1" in report.summary()
    assert report.to_metadata()["passed"] is False


def test_validation_refuses_zero_warmup_with_the_reason(zero):
    with pytest.raises(StrategyError, match="warmup check failed: WARMUP_BARS = 0: it must be"):
        validate_version(zero, bars(40))


def test_one_bar_of_warmup_is_checked_normally(tmp_path):
    one = InProcessStrategy(write(tmp_path, GOOD.replace("WARMUP_BARS = 10", "WARMUP_BARS = 1")))
    assert check_warmup(one, bars(40), 1).passed
