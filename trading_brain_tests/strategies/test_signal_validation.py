"""``validate_signals``: every contract rule is enforced by the fast path too (each bad value,
alone in an otherwise valid frame, is refused with the rule's message), and valid output comes
back with exact types, ``ts`` from the bars and a null ``regime`` when the strategy has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from trading_brain.domain.strategy import SIGNAL_SCHEMA, validate_signals
from trading_brain.errors import StrategyError

N = 50
BARS = pl.DataFrame({"ts": [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * i)
                            for i in range(N)], "close": [1.0] * N})


def _good() -> pl.DataFrame:
    return pl.DataFrame({"action": ["hold"] * N, "size": [0.1] * N, "stop_loss": [0.02] * N,
                         "take_profit": [None] * N, "intent": ["swing"] * N,
                         "confidence": [0.5] * N}, schema_overrides={"take_profit": pl.Float64})


def _with(col: str, value, dtype=None) -> pl.DataFrame:
    df = _good()
    values = df[col].to_list()
    values[N // 2] = value
    return df.with_columns(pl.Series(col, values, dtype=dtype or df.schema[col], strict=False))


@pytest.mark.parametrize(("col", "value", "message"), [
    ("action", "buy", "column 'action' has 1 value(s) outside"),
    ("action", None, "column 'action' has 1 value(s) outside"),
    ("intent", "scalp", "column 'intent' has value(s) outside"),
    ("intent", None, "column 'intent' has value(s) outside"),
    ("size", None, "column 'size' has 1 null value(s)"),
    ("size", float("nan"), "column 'size' has NaN or infinite values"),
    ("size", 1.5, "column 'size' has values outside the allowed range"),
    ("size", -0.1, "column 'size' has values outside the allowed range"),
    ("confidence", float("inf"), "column 'confidence' has NaN or infinite values"),
    ("confidence", None, "column 'confidence' has 1 null value(s)"),
    ("stop_loss", 0.0, "column 'stop_loss' has values outside the allowed range"),
    ("stop_loss", 1.5, "column 'stop_loss' has values outside the allowed range"),
    ("stop_loss", float("-inf"), "column 'stop_loss' has NaN or infinite values"),
    ("take_profit", -0.01, "column 'take_profit' has values outside the allowed range"),
    ("take_profit", float("nan"), "column 'take_profit' has NaN or infinite values"),
])
def test_each_bad_value_is_refused_with_its_rule(col, value, message):
    with pytest.raises(StrategyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_signals(_with(col, value), BARS)


def test_a_long_regime_label_is_refused():
    bad = _good().with_columns(pl.lit("r" * 33).alias("regime"))
    with pytest.raises(StrategyError, match="longer than 32"):
        validate_signals(bad, BARS)


def test_valid_output_has_exact_types_ts_and_a_null_regime():
    out = validate_signals(_good().with_columns(pl.col("size").cast(pl.Float32)), BARS)
    assert out.schema == pl.Schema({"ts": BARS.schema["ts"], **SIGNAL_SCHEMA})
    assert out["ts"].equals(BARS["ts"]) and out["regime"].null_count() == N
    assert out["take_profit"].null_count() == N
    assert out["size"].to_list() == [pytest.approx(0.1)] * N
