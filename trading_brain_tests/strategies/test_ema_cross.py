"""strategies/ema_cross/v1.py: the exact crossover rules on hand-built series."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trading_brain.app.research.strategy_files import InProcessStrategy
from trading_brain.errors import ConfigError

PATH = Path(__file__).resolve().parents[2] / "strategies" / "ema_cross" / "v1.py"


def bars(closes: list[float]) -> pl.DataFrame:
    n = len(closes)
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(minutes=5 * (n - 1)), "5m", eager=True)
    return pl.DataFrame({
        "ts": ts.cast(pl.Datetime("us", "UTC")), "open": closes, "high": closes, "low": closes,
        "close": closes, "volume": [1.0] * n,
    })  # fmt: skip


def ema_loop(x: list[float], n: int) -> list[float]:
    alpha, out = 2.0 / (n + 1), [x[0]]
    for v in x[1:]:
        out.append(out[-1] + alpha * (v - out[-1]))
    return out


def expected_actions(closes: list[float], fast: int, slow: int) -> list[str]:
    f, s = ema_loop(closes, fast), ema_loop(closes, slow)
    out = ["hold"]
    for t in range(1, len(closes)):
        if t >= slow and f[t] > s[t] and f[t - 1] <= s[t - 1]:
            out.append("enter")
        elif t >= slow and f[t] < s[t] and f[t - 1] >= s[t - 1]:
            out.append("exit")
        else:
            out.append("hold")
    return out


@pytest.fixture(scope="module")
def strategy() -> InProcessStrategy:
    return InProcessStrategy(PATH)


def test_known_crosses_on_a_hand_built_series(strategy: InProcessStrategy) -> None:
    # flat (fast == slow: no cross), rise from bar 30 (up-cross there), fall from bar 60
    # (down-cross)
    closes = (
        [100.0] * 30 + [100.0 + i for i in range(1, 31)] + [130.0 - 2 * i for i in range(1, 41)]
    )
    out = strategy.generate(bars(closes))
    actions = out["action"].to_list()
    assert actions[30] == "enter"
    exits = [i for i, a in enumerate(actions) if a == "exit"]
    assert len(exits) == 1 and 60 < exits[0] < 70
    assert actions.count("enter") == 1
    assert actions == expected_actions(closes, 9, 21)
    assert out["ts"].equals(bars(closes)["ts"])


def test_no_signal_before_bar_slow(strategy: InProcessStrategy) -> None:
    # the up-cross happens at bar 5 < slow=21: it must stay "hold"; the later down-cross counts
    closes = [100.0] * 5 + [101.0 + i for i in range(20)] + [120.0 - 3 * i for i in range(20)]
    actions = strategy.generate(bars(closes))["action"].to_list()
    assert actions[5] == "hold" and "enter" not in actions
    assert "exit" in actions and actions.index("exit") >= 21
    assert actions == expected_actions(closes, 9, 21)


def test_columns_follow_params(strategy: InProcessStrategy) -> None:
    closes = [100.0] * 30 + [100.0 + i for i in range(1, 31)]
    out = strategy.generate(bars(closes), {"fast": 5, "slow": 12, "size": 0.25, "stop_loss": 0.03})
    assert out["size"].unique().to_list() == [0.25]
    assert out["stop_loss"].unique().to_list() == [0.03]
    assert out["take_profit"].unique().to_list() == [0.04]
    assert out["intent"].unique().to_list() == ["swing"]
    enter = out.filter(pl.col("action") == "enter")
    assert enter.height == 1 and enter["confidence"][0] == 1.0
    assert out.filter(pl.col("action") == "hold")["confidence"].unique().to_list() == [0.0]
    assert out["action"].to_list() == expected_actions(closes, 5, 12)


def test_defaults_and_tiny_inputs(strategy: InProcessStrategy) -> None:
    p = strategy.default_params
    assert (p.fast, p.slow, p.stop_loss, p.take_profit, p.size) == (9, 21, 0.02, 0.04, 0.1)
    assert strategy.generate(bars([100.0]))["action"].to_list() == ["hold"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"fast": 30, "slow": 20}, "fast (30) must be < slow (20)"),
        ({"slow": 500}, "slow"),
        ({"size": 1.5}, "size"),
        ({"stop_loss": "wide"}, "stop_loss"),
        ({"fastt": 3}, "unknown parameter(s) fastt"),
    ],
)
def test_bad_params_are_one_line_config_errors(
    strategy: InProcessStrategy, params: dict, needle: str
) -> None:
    with pytest.raises(ConfigError) as err:
        strategy.generate(bars([100.0] * 5), params)
    assert needle in str(err.value) and "\n" not in str(err.value)
