"""Strategy registry: gates before recording, immutable releases, deploy and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_brain.app.research.strategy_files import InProcessStrategy
from trading_brain.engine import registry
from trading_brain.errors import ConfigError, StrategyError
from trading_brain_tests.conftest import REPO, make_candles

EMA = REPO / "strategies" / "ema_cross" / "v1.py"
BIASED = REPO / "trading_brain_tests" / "fixtures" / "strategies" / "lookahead_biased.py"


class TrustedSource(InProcessStrategy):
    """In-process stand-in for the sandbox worker (the differential tests prove they agree)."""

    def params_schema(self):
        return self.module.params_cls.model_json_schema(), self.default_params.model_dump()


def opener(tmp_path: Path):
    def open_source(text: str) -> TrustedSource:
        f = tmp_path / f"s{abs(hash(text))}.py"
        f.write_text(text)
        return TrustedSource(f)
    return open_source


@pytest.fixture
def bars():
    return make_candles(n=1500, seed=11).drop("symbol", "timeframe")


def test_register_validates_then_records_once(store, tmp_path, bars):
    text = EMA.read_text()
    row, created = registry.register(store, text, opener(tmp_path), bars, path=str(EMA))
    assert created and row["status"] == "registered" and row["sha256"] == registry.sha256(text)
    assert row["validation"]["lookahead"]["passed"] and row["validation"]["warmup"]["passed"]
    assert row["params_default"]["fast"] == 9
    again, created = registry.register(store, text, opener(tmp_path), bars)
    assert not created and again["sha256"] == row["sha256"]


def test_changed_source_for_a_released_version_is_refused(store, tmp_path, bars):
    text = EMA.read_text()
    registry.register(store, text, opener(tmp_path), bars)
    with pytest.raises(StrategyError, match=r"ema_cross@1 is already released.*new version v2"):
        registry.register(store, text + "\n# tweak\n", opener(tmp_path), bars)
    assert len(store.strategy_versions("ema_cross")) == 1


def test_lookahead_biased_strategy_is_rejected_and_not_recorded(store, tmp_path, bars):
    with pytest.raises(StrategyError, match="lookahead check failed"):
        registry.register(store, BIASED.read_text(), opener(tmp_path), bars)
    assert store.strategy_versions() == []


def test_deploy_and_rollback_are_a_stack(store, tmp_path, bars):
    text = EMA.read_text()
    registry.register(store, text, opener(tmp_path), bars)
    v2 = text.replace("VERSION = 1", "VERSION = 2")
    registry.register(store, v2, opener(tmp_path), bars, parent_version=1, reason="test")
    with pytest.raises(ConfigError, match="nothing to roll back"):
        registry.rollback(store)
    registry.deploy(store, "ema_cross", 1)
    registry.deploy(store, "ema_cross", 2)
    assert store.active_version() == ("ema_cross", 2)
    assert registry.rollback(store) == ("ema_cross", 1)
    assert store.active_version() == ("ema_cross", 1)
    with pytest.raises(ConfigError, match="nothing to roll back"):
        registry.rollback(store)
    with pytest.raises(ConfigError, match="unknown strategy version ema_cross@9"):
        registry.deploy(store, "ema_cross", 9)


@pytest.mark.parametrize(("ref", "expected"), [
    ("ema_cross@2", ("ema_cross", 2)), ("ema_cross@v3", ("ema_cross", 3)),
    ("ema_cross", ("ema_cross", None)),
])
def test_parse_ref(ref, expected):
    assert registry.parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["@1", "ema@x", ""])
def test_parse_ref_rejects(ref):
    with pytest.raises(ConfigError):
        registry.parse_ref(ref)
