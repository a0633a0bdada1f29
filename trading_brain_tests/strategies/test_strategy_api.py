"""trading_brain/app/research/strategy_files.py: loading, describing, discovery, parameter spaces
and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict, Field

from trading_brain.app.research.strategy_files import (
    InProcessStrategy,
    describe,
    find_strategies,
    load_module,
    param_space,
    parse_params,
)
from trading_brain.errors import ConfigError, DataError, StrategyError
from trading_brain.ports import SignalSource

ROOT = Path(__file__).resolve().parents[2]
GOOD = textwrap.dedent(
    '''
    """A tiny valid strategy."""
    import polars as pl
    from pydantic import BaseModel, ConfigDict, Field

    STRATEGY_ID = "tiny"
    VERSION = 2
    WARMUP_BARS = 10


    class Params(BaseModel):
        model_config = ConfigDict(frozen=True)
        size: float = Field(0.5, ge=0.0, le=1.0)


    def generate(bars, params):
        return bars.with_columns(
            pl.lit("hold").alias("action"), pl.lit(params.size).alias("size"),
            pl.lit(None, pl.Float64).alias("stop_loss"),
            pl.lit(None, pl.Float64).alias("take_profit"),
            pl.lit("day").alias("intent"), pl.lit(0.0).alias("confidence"),
        ).select("action", "size", "stop_loss", "take_profit", "intent", "confidence")
    '''
)


def write(tmp_path: Path, source: str, rel: str = "tiny/v2.py") -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


def bars(n: int = 5) -> pl.DataFrame:
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(minutes=5 * (n - 1)), "5m", eager=True)
    x = [float(i + 1) for i in range(n)]
    return pl.DataFrame({"symbol": "X/USD", "ts": ts.cast(pl.Datetime("us", "UTC")), "open": x,
                         "high": x, "low": x, "close": x, "volume": x})  # fmt: skip


def good_source() -> str:
    return GOOD


def test_load_and_describe_a_module(tmp_path: Path) -> None:
    path = write(tmp_path, good_source())
    mod = load_module(path)
    assert (mod.strategy_id, mod.version, mod.warmup_bars) == ("tiny", 2, 10)
    assert mod.doc == "A tiny valid strategy." and len(mod.sha256) == 64
    info = describe(path)
    assert info["params"] == {"size": 0.5} and info["param_space"]["size"]["high"] == 1.0
    assert info["sha256"] == mod.sha256


def test_in_process_strategy_is_a_validated_signal_source(tmp_path: Path) -> None:
    src = InProcessStrategy(write(tmp_path, good_source()))
    assert isinstance(src, SignalSource)
    out = src.generate(bars())  # the extra 'symbol' column is dropped before generate
    assert out.columns == ["ts", "action", "size", "stop_loss", "take_profit", "intent",
                           "confidence", "regime"]  # fmt: skip
    assert out["size"].to_list() == [0.5] * 5
    assert src.generate(bars(), {"size": 0.2})["size"][0] == 0.2
    with pytest.raises(DataError, match="missing column"):
        src.generate(bars().drop("volume"))
    src.close()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda s: s.replace('STRATEGY_ID = "tiny"', 'STRATEGY_ID = "Tiny-1"'), "STRATEGY_ID"),
        (lambda s: s.replace("VERSION = 2", "VERSION = 0"), "VERSION must be a positive int"),
        (lambda s: s.replace("WARMUP_BARS = 10", "WARMUP_BARS = '10'"), "WARMUP_BARS"),
        (lambda s: s.replace("frozen=True", "frozen=False"), "frozen"),
        (
            lambda s: s.replace("Field(0.5, ge=0.0, le=1.0)", "Field(ge=0.0, le=1.0)"),
            "without a default",
        ),
        (lambda s: s.replace("Field(0.5, ge=0.0, le=1.0)", "0.5"), "declare a search space"),
        (lambda s: s.replace("def generate(", "def generat("), "generate"),
        (lambda s: s + "\nraise RuntimeError('boom at import')\n", "boom at import"),
        (lambda s: s + "\ndef broken(:\n", "SyntaxError"),
    ],
)
def test_contract_violations_are_strategy_errors(tmp_path: Path, change, needle: str) -> None:
    path = write(tmp_path, change(good_source()))
    with pytest.raises(StrategyError) as err:
        load_module(path)
    assert needle in str(err.value)


def test_missing_file_is_a_strategy_error(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="cannot read"):
        load_module(tmp_path / "nope.py")


def test_generate_failures_become_strategy_errors(tmp_path: Path) -> None:
    raising = good_source().replace(
        "return bars.with_columns(", "1 / 0\n    return bars.with_columns("
    )
    src = InProcessStrategy(write(tmp_path, raising))
    with pytest.raises(StrategyError, match="tiny v2: generate raised ZeroDivisionError"):
        src.generate(bars())
    short = good_source().replace("return bars.with_columns(", "return bars.head(2).with_columns(")
    src = InProcessStrategy(write(tmp_path, short, "tiny2/v2.py"))
    with pytest.raises(StrategyError, match="returned 2 rows for 5 bars"):
        src.generate(bars())


def test_find_strategies_lists_shipped_families_without_running_them() -> None:
    refs = find_strategies()
    ids = {(r.strategy_id, r.version) for r in refs}
    assert {("ema_cross", 1), ("ema_rsi_volume", 1), ("trend_pullback", 1)} <= ids
    assert all(
        r.path.name == f"v{r.version}.py" and r.path.parent.name == r.strategy_id for r in refs
    )


def test_find_strategies_rejects_mismatched_paths(tmp_path: Path) -> None:
    write(tmp_path, good_source(), "tiny/v2.py")
    write(tmp_path, "raise SystemExit('never executed')\n", "tiny/notes.py")
    assert [(r.strategy_id, r.version) for r in find_strategies(tmp_path)] == [("tiny", 2)]
    write(tmp_path, good_source(), "tiny/v3.py")  # declares VERSION = 2
    with pytest.raises(StrategyError, match="do not match the path"):
        find_strategies(tmp_path)


class Space(BaseModel):
    model_config = ConfigDict(frozen=True)
    n: int = Field(10, ge=2, le=50)
    x: float = Field(0.5, gt=0.0, lt=1.0)
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    k: float = Field(2.0, json_schema_extra={"space": [1.0, 2.0, 3.0]})


def test_param_space_reads_bounds_literals_bools_and_explicit_spaces() -> None:
    space = param_space(Space)
    assert space["n"] == {"kind": "int", "low": 2, "high": 50, "low_inclusive": True,
                          "high_inclusive": True, "default": 10}  # fmt: skip
    assert space["x"]["kind"] == "float" and space["x"]["low_inclusive"] is False
    assert space["x"]["high_inclusive"] is False
    assert space["mode"] == {"kind": "choice", "choices": ["fast", "slow"], "default": "fast"}
    assert space["flag"]["choices"] == [False, True]
    assert space["k"]["choices"] == [1.0, 2.0, 3.0]


def test_param_space_requires_a_space() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(frozen=True)
        n: int = Field(3, ge=1)

    with pytest.raises(StrategyError, match="Params.n: declare a search space"):
        param_space(Open)


def test_parse_params_errors_are_one_line() -> None:
    assert parse_params(Space, None) == Space()
    assert parse_params(Space, {"n": 7}).n == 7
    for bad, needle in [
        ({"n": 1}, "n: Input should be greater than or equal to 2 (got 1)"),
        ({"mode": "medium"}, "mode:"),
        ({"zzz": 1}, "unknown parameter(s) zzz"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_params(Space, bad)
        assert needle in str(err.value) and "\n" not in str(err.value)
