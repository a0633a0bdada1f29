"""Text from strategy code never reaches a terminal, log or record as control sequences.

OSC 52 (write the clipboard), OSC 0 (set the title) and CSI (erase the screen) in an exception,
a per-symbol error, a ``regime`` label and the worker's stderr tail arrive at the host as visible
escapes; ``safe_text`` itself keeps newlines, tabs and ordinary Unicode.
"""

from __future__ import annotations

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.adapters.sandbox.text import safe_text
from trading_brain.errors import SandboxViolation, StrategyError
from trading_brain_tests.adapters.sandbox.helpers import synthetic_bars

OSC52 = "\x1b]52;c;cGF5bG9hZA==\x07"
TITLE = "\x1b]0;pwned\x1b\\"
CSI = "\x1b[2J\x9b31m"
SOURCE = f"""
from typing import Literal

import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "escapes"
VERSION = 1
WARMUP_BARS = 1
PAYLOAD = {OSC52 + TITLE + CSI!r}


class Params(BaseModel):
    mode: Literal["raise", "regime", "ok"] = "raise"


def generate(bars, params):
    if params.mode == "raise":
        raise ValueError("bad" + PAYLOAD)
    out = bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.0),
    ).drop("ts", "open", "high", "low", "close", "volume")
    if params.mode == "regime":
        out = out.with_columns(regime=pl.lit("r" + PAYLOAD[:12]))
    return out
"""


def _clean(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\x9b")


def test_safe_text_escapes_controls_and_keeps_text():
    assert safe_text(OSC52) == "\\x1b]52;c;cGF5bG9hZA==\\x07"
    assert safe_text(CSI) == "\\x1b[2J\\x9b31m"
    assert safe_text("a\u202eb\x7f\x00") == "a\\u202eb\\x7f\\x00"
    assert safe_text("line 1\n\tprix: 3 € → ok") == "line 1\n\tprix: 3 € → ok"


@pytest.fixture(scope="module")
def strategy():
    s = SandboxedStrategy(SOURCE)
    yield s
    s.close()


@pytest.mark.slow
def test_exception_text_is_escaped(strategy):
    with pytest.raises(StrategyError) as e:
        strategy.generate(synthetic_bars())
    assert _clean(str(e.value)), repr(str(e.value))
    assert "\\x1b]52;c;cGF5bG9hZA==\\x07" in str(e.value) and "\\x1b[2J\\x9b31m" in str(e.value)


@pytest.mark.slow
def test_per_symbol_errors_and_regime_labels_are_escaped(strategy):
    bars = synthetic_bars()
    (err,) = strategy.generate_many({"BTC/USD": bars}).values()
    assert isinstance(err, StrategyError) and _clean(str(err)) and "\\x1b]52" in str(err)
    regimes = strategy.generate(bars, {"mode": "regime"})["regime"].unique().to_list()
    assert len(regimes) == 1 and _clean(regimes[0]) and regimes[0].startswith("r\\x1b]52")


@pytest.mark.slow
def test_stderr_tail_of_a_dying_worker_is_escaped():
    src = SOURCE.replace(
        '        raise ValueError("bad" + PAYLOAD)',
        '        print(PAYLOAD, flush=True)\n'
        '        import dataclasses\n'
        '        dataclasses.fields.__globals__["sys"].modules["os"]._exit(3)')
    s = SandboxedStrategy(src, static_gate=False)
    try:
        with pytest.raises(SandboxViolation) as e:
            s.generate(synthetic_bars())
    finally:
        s.close()
    assert "exit code 3" in str(e.value) and "stderr tail" in str(e.value)
    assert _clean(str(e.value)) and "\\x1b]52" in str(e.value)
