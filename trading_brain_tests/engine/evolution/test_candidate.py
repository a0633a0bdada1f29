"""Tier-1 candidates by code transform (engine/evolution/candidate.py) on the shipped strategies."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from trading_brain.app.research.strategy_files import load_module
from trading_brain.engine.evolution.candidate import changes, derive_source, read_defaults
from trading_brain.errors import StrategyError

REPO = Path(__file__).resolve().parents[3]
SHIPPED = {
    "ema_cross": {"fast": 20, "slow": 60, "stop_loss": 0.035},
    "ema_rsi_volume": {"rsi_low": 45.5, "volume_min": 2.0, "slow": 30},
    "trend_pullback": {"trend_len": 80, "sl_atr": 3.25},
}


def _source(family: str) -> str:
    return (REPO / "strategies" / family / "v1.py").read_text(encoding="utf-8")


def _space(family: str) -> dict:
    return load_module(REPO / "strategies" / family / "v1.py").params_cls.model_json_schema()


@pytest.mark.parametrize("family", sorted(SHIPPED))
def test_only_the_defaults_and_version_change(family: str, tmp_path: Path) -> None:
    src, params = _source(family), SHIPPED[family]
    out = derive_source(src, params, space=_space(family), new_version=2,
                        note=f"derived from {family}@1")
    assert out.startswith(f"# derived from {family}@1\n")
    diff = [ln for ln in difflib.unified_diff(src.splitlines(), out.splitlines(), lineterm="",
                                              n=0) if ln[:1] in "+-" and ln[:3] not in "+++---"]
    removed = [ln for ln in diff if ln.startswith("-")]
    added = [ln for ln in diff if ln.startswith("+")]
    assert len(removed) == len(params) + 1  # one line per default, plus VERSION
    assert len(added) == len(params) + 2  # and the provenance comment
    assert "-VERSION = 1" in removed and "+VERSION = 2" in added
    # the module loads (trusted: shipped code) with the new defaults and version
    path = tmp_path / family / "v2.py"
    path.parent.mkdir()
    path.write_text(out, encoding="utf-8")
    mod = load_module(path)
    assert mod.version == 2 and mod.strategy_id == family
    got = mod.params_cls().model_dump()
    for name, value in params.items():
        assert got[name] == value and type(got[name]) is type(value)
    assert read_defaults(out) == (2, {**read_defaults(src)[1], **params})


def test_bytes_outside_the_splices_are_kept() -> None:
    src = _source("ema_cross")
    out = derive_source(src, {"fast": 12}, space=_space("ema_cross"), new_version=7)
    assert out == src.replace("VERSION = 1", "VERSION = 7").replace(
        "fast: int = Field(9,", "fast: int = Field(12,")


def test_integral_float_for_an_integer_field_is_written_as_int() -> None:
    out = derive_source(_source("ema_cross"), {"fast": 12.0}, space=_space("ema_cross"),
                        new_version=2)
    assert "Field(12, ge=2" in out and read_defaults(out)[1]["fast"] == 12


@pytest.mark.parametrize(("params", "message"), [
    ({"fast": 51}, "outside the declared search space (maximum 50)"),
    ({"fast": 1}, "minimum 2"),
    ({"fast": 9.5}, "not an integer"),
    ({"stop_loss": float("nan")}, "not a finite number"),
    ({"fast": True}, "not a finite number"),
    ({"bogus": 3}, "unknown parameter 'bogus'"),
    ({"STRATEGY_ID": 3}, "unknown parameter"),
    ({}, "at least one parameter"),
])
def test_refuses_params_outside_the_space(params: dict, message: str) -> None:
    with pytest.raises(StrategyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        derive_source(_source("ema_cross"), params, space=_space("ema_cross"), new_version=2)


def test_refuses_a_version_not_above_the_parent() -> None:
    with pytest.raises(StrategyError, match="must be above"):
        derive_source(_source("ema_cross"), {"fast": 12}, space=_space("ema_cross"),
                      new_version=1)


def test_refuses_sources_without_the_contract() -> None:
    space = _space("ema_cross")
    with pytest.raises(StrategyError, match="no top-level class Params"):
        derive_source("VERSION = 1\n", {"fast": 3}, space=space, new_version=2)
    with pytest.raises(StrategyError, match="no top-level VERSION"):
        derive_source("class Params:\n    fast: int = 3\n", {"fast": 4}, space=space,
                      new_version=2)
    with pytest.raises(StrategyError, match="does not parse"):
        derive_source("class Params(:\n", {"fast": 4}, space=space, new_version=2)
    computed = "VERSION = 1\nN = 3\nclass Params:\n    fast: int = Field(default_factory=f)\n"
    with pytest.raises(StrategyError, match="no literal default"):
        derive_source(computed, {"fast": 4}, space=space, new_version=2)
    named = "VERSION = 1\nN = 3\nclass Params:\n    fast: int = N\n"
    with pytest.raises(StrategyError, match="not a literal"):
        derive_source(named, {"fast": 4}, space=space, new_version=2)


def test_plain_and_keyword_defaults_and_a_hostile_note() -> None:
    src = ("VERSION = 3  # keep me\nclass Params:\n    fast: int = 5\n"
           "    slow: int = Field(default=30, ge=10)\n    on: bool = Field(False)\n")
    space = {"properties": {"fast": {"type": "integer", "minimum": 2},
                            "slow": {"type": "integer", "minimum": 10},
                            "on": {"type": "boolean"}}}
    out = derive_source(src, {"fast": 6, "slow": 40, "on": True}, space=space, new_version=4,
                        note="line one\nimport os")
    assert out == ("# line one import os\nVERSION = 4  # keep me\nclass Params:\n"
                   "    fast: int = 6\n    slow: int = Field(default=40, ge=10)\n"
                   "    on: bool = Field(True)\n")
    with pytest.raises(StrategyError, match="not true/false"):
        derive_source(src, {"on": 1}, space=space, new_version=4)


def test_changes_lists_only_what_differs() -> None:
    assert changes({"fast": 9, "slow": 21}, {"fast": 20, "slow": 21}) == "fast 9 -> 20"
    assert changes({"fast": 9}, {"fast": 9}) == "no change"
