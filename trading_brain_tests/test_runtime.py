"""``app.runtime``: a frozen dataclass of ports built by ``build_runtime``; a derived runtime
(``dataclasses.replace``) is used as is, nothing is patched; the market is built on first use."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.runtime import Runtime, build_runtime, executor_slots
from trading_brain.errors import ConfigError
from trading_brain.settings import Home, Settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_runtime_is_frozen_and_pins_the_clock(tmp_path) -> None:
    rt = build_runtime(Home(tmp_path), now=NOW, settings=Settings(symbols=["BTC/USD"]))
    assert isinstance(rt, Runtime) and rt.clock.now() == NOW
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.store = None  # type: ignore[misc]  # the point: a runtime is never patched


def test_a_derived_runtime_trades_on_its_own_clock_and_market(tmp_path) -> None:
    rt = build_runtime(Home(tmp_path), now=NOW, settings=Settings(symbols=["BTC/USD"]))
    clock = SimClock(NOW)
    sim = dataclasses.replace(rt, clock=clock, market=SimMarket(["BTC/USD"], seed=1, clock=clock))
    venue = executor_slots(sim, {})["active"].exchange
    assert isinstance(venue, PaperExchange)
    assert venue.clock is clock and venue.market is sim.market and venue.store is rt.store
    assert rt.clock is not clock  # the home's runtime is unchanged


def test_the_market_is_built_on_first_use(tmp_path) -> None:
    """A replay home without data still gives a runtime (halt, status, kill never price);
    the market's ConfigError comes when a price is asked for."""
    settings = Settings(market="replay")
    rt = build_runtime(Home(tmp_path), now=NOW, settings=settings)
    assert rt.market.name == "replay" and rt.market_is_local
    with pytest.raises(ConfigError, match="replay.data"):
        rt.market.asset_pairs(["BTC/USD"])


def test_store_counts_name_the_busy_slots(tmp_path) -> None:
    """``open_counts``/``busy_slots`` (what simulate and the executor ask) on a fresh warehouse
    and after a pending intent of a shadow slot."""
    from decimal import Decimal

    from trading_brain.domain.intents import OrderIntent, intent_id_for

    rt = build_runtime(Home(tmp_path), now=NOW, settings=Settings(symbols=["BTC/USD"]))
    assert rt.store.open_counts() == (0, 0, 0) and rt.store.busy_slots() == set()
    intent = OrderIntent(
        intent_id=intent_id_for("ema_cross", 1, "shadow1", "BTC/USD", NOW, "enter"),
        scan_id="s1", strategy_id="ema_cross", version=1, slot="shadow1", symbol="BTC/USD",
        bar_time=NOW, action="enter", quantity=Decimal("0.01"),
        reference_price=Decimal(50_000), created_at=NOW)
    assert rt.store.record_intents([intent]) == 1
    assert rt.store.open_counts() == (0, 0, 1) and rt.store.busy_slots() == {"shadow1"}
    assert set(executor_slots(rt, {})) == {"active", "shadow1"}
