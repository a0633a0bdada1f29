"""engine.scan over real SimMarket bars with trusted in-process strategies (no sandbox here).

A small scripted strategy written to ``tmp_path`` takes its action from its params, so each test
chooses the signal; the real ``ema_cross`` checks that the decision is the last row of a
full-history ``generate`` (the warm-up window reproduces it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, InProcessStrategy
from trading_brain.domain.intents import intent_id_for
from trading_brain.domain.risk import (
    Halt,
    PendingOrder,
    PortfolioView,
    PositionView,
    RiskLimits,
    RiskState,
)
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.scan import BAR, SlotInput, run_scan, scan_bar_time, scan_id_for
from trading_brain.errors import ConfigError, DataError, SandboxViolation, StrategyError

NOW = datetime(2026, 11, 20, 10, 2, 30, tzinfo=UTC)
BAR_TIME = datetime(2026, 11, 20, 9, 55, tzinfo=UTC)
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
LIMITS = RiskLimits()
SCRIPTED = '''"""Scripted test strategy: every bar carries the action given in the params."""
from typing import Literal
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

STRATEGY_ID = "scripted"
VERSION = 3
WARMUP_BARS = 50


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    action: Literal["enter", "exit", "hold"] = "hold"
    size: float = Field(0.1, ge=0.0, le=1.0)
    fail: bool = False


def generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame:
    if params.fail:
        raise RuntimeError("boom")
    n = bars.height
    return pl.DataFrame({"action": [params.action] * n, "size": [params.size] * n,
                         "stop_loss": [0.02] * n, "take_profit": [0.05] * n,
                         "intent": ["day"] * n, "confidence": [0.7] * n,
                         "regime": ["scripted"] * n})
'''


@cache
def _market_bars() -> tuple[dict[str, pl.DataFrame], dict]:
    market = SimMarket(SYMBOLS, seed=11, clock=SimClock(NOW))
    start = NOW - timedelta(minutes=5 * 1400)
    bars = {s: market.candles(s, "5m", start, NOW) for s in SYMBOLS}
    return bars, market.asset_pairs(SYMBOLS)


@pytest.fixture
def bars():
    return _market_bars()[0]


@pytest.fixture
def pairs():
    return _market_bars()[1]


@pytest.fixture
def scripted(tmp_path):
    path = tmp_path / "scripted" / "v3.py"
    path.parent.mkdir()
    path.write_text(SCRIPTED)
    return InProcessStrategy(path)


def account(cash: str = "10000", positions: dict | None = None) -> PortfolioView:
    pos = positions or {}
    value = sum((p.value for p in pos.values()), Decimal(0))
    return PortfolioView(equity=Decimal(cash) + value, cash=Decimal(cash), positions=pos)


def slot(source, action: str, name: str = "active", pf: PortfolioView | None = None,
         state: RiskState | None = None, **params) -> SlotInput:
    return SlotInput(name, source, pf or account(), state or RiskState(),
                     {"action": action, **params})


def held(qty: str = "0.01", value: str = "900") -> PositionView:
    return PositionView(qty=Decimal(qty), value=Decimal(value),
                        entry_price=Decimal(value) / Decimal(qty))


def test_bar_time_is_the_newest_closed_bar():
    assert scan_bar_time(NOW) == BAR_TIME
    assert scan_bar_time(datetime(2026, 11, 20, 0, 0, tzinfo=UTC)) == datetime(
        2026, 11, 19, 23, 55, tzinfo=UTC)
    with pytest.raises(DataError):
        scan_bar_time(datetime(2026, 11, 20, 10, 0))


def test_holds_are_recorded_without_intents(scripted, bars, pairs):
    res = run_scan(bars, [slot(scripted, "hold")], LIMITS, pairs, NOW)
    assert res.intents == [] and res.decisions == []
    assert [(s["symbol"], s["action"], s["risk_decision"]) for s in res.signals] == [
        (s, "hold", None) for s in SYMBOLS]
    assert all(s["bar_time"] == BAR_TIME and s["regime"] == "scripted" for s in res.signals)
    scan = res.scan
    assert (scan["symbols"], scan["signals"], scan["intents"], scan["rejected"]) == (3, 0, 0, 0)
    btc = scan["details"]["symbols"]["BTC/USD"]
    assert btc["newest_bar"] == BAR_TIME.isoformat()
    assert btc["regime"] in ("trend_up", "trend_down", "range", "volatile")
    assert btc["close"] == float(bars["BTC/USD"]["close"][-1])
    assert 0 <= btc["indicators"]["rsi_14"] <= 100
    assert btc["signals"]["active"]["action"] == "hold"


def test_indicator_state_does_not_depend_on_row_order(scripted, bars, pairs):
    """ts-sorted rows (what the scan inputs give) take the walk-back path; any other order the
    general loop: the same state, also when symbols lack rows or only have rows after the bar."""
    frames = [b.with_columns(pl.lit(s).alias("symbol")) for s, b in bars.items()]
    full = compute_indicators(pl.concat(frames)).filter(pl.col("ts") >= BAR_TIME - 12 * BAR)
    cases = [full, full.filter(pl.col("symbol") != "ETH/USD"),
             full.filter((pl.col("symbol") != "SOL/USD") | (pl.col("ts") > BAR_TIME)),
             full.filter((pl.col("symbol") != "BTC/USD") | (pl.col("ts") < BAR_TIME - 3 * BAR))]
    for k in range(5):
        cases.append(full.sample(fraction=0.4, seed=k))
    for rows in cases:
        by_symbol = run_scan(bars, [slot(scripted, "hold")], LIMITS, pairs, NOW,
                             indicators=rows.sort("symbol", "ts"))
        by_time = run_scan(bars, [slot(scripted, "hold")], LIMITS, pairs, NOW,
                           indicators=rows.sort("ts", "symbol"))
        assert by_symbol.scan["details"] == by_time.scan["details"]
    state = by_time.scan["details"]["symbols"]
    assert all("indicators_at" in state[s] for s in rows["symbol"].unique().to_list())


def test_precomputed_indicators_give_the_same_state(scripted, bars, pairs):
    frames = [b.with_columns(pl.lit(s).alias("symbol")) for s, b in bars.items()]
    full = compute_indicators(pl.concat(frames))
    given = run_scan(bars, [slot(scripted, "hold")], LIMITS, pairs, NOW, indicators=full)
    computed = run_scan(bars, [slot(scripted, "hold")], LIMITS, pairs, NOW)
    for sym in SYMBOLS:
        a, b = given.scan["details"]["symbols"][sym], computed.scan["details"]["symbols"][sym]
        mine = (pl.col("symbol") == sym) & (pl.col("ts") == BAR_TIME)
        last = full.filter(mine).row(0, named=True)
        assert a["regime"] == b["regime"] == last["regime"]
        assert a["indicators_at"] == BAR_TIME.isoformat()
        assert a["indicators"]["rsi_14"] == pytest.approx(b["indicators"]["rsi_14"], rel=1e-6)
        assert a["indicators"]["ema_50"] == pytest.approx(b["indicators"]["ema_50"], rel=1e-3)


def test_entries_become_intents_with_deterministic_ids(scripted, bars, pairs, tmp_path):
    res = run_scan(bars, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    assert res.scan["intents"] == len(res.intents) == 3
    for intent in res.intents:
        assert intent.intent_id == intent_id_for("scripted", 3, "active", intent.symbol,
                                                 BAR_TIME, "enter")
        close = Decimal(repr(float(bars[intent.symbol]["close"][-1])))
        assert intent.reference_price == close and intent.limit_price >= close
        assert intent.quantity * intent.limit_price <= Decimal("1000.01")  # size 10 % of cash
        assert (intent.stop_loss, intent.take_profit, intent.intent_type) == (0.02, 0.05, "day")
    assert {s["risk_decision"] for s in res.signals} == {"approved"}
    # a rerun later within the same bar: same scan id and intent ids, nothing new stored
    again = run_scan(bars, [slot(scripted, "enter")], LIMITS, pairs, NOW + timedelta(seconds=90))
    assert again.scan_id == res.scan_id == scan_id_for(BAR_TIME, [("active", "scripted", 3)])
    assert [i.intent_id for i in again.intents] == [i.intent_id for i in res.intents]
    store = Store.open(tmp_path / "wh.duckdb")
    assert store.record_scan(res.scan, res.signals, res.intents) == 3
    assert store.record_scan(again.scan, again.signals, again.intents) == 0
    assert store.execute("SELECT count(*) FROM order_intents")[0][0] == 3
    assert store.execute("SELECT count(*) FROM scans")[0][0] == 1
    assert store.execute("SELECT count(*) FROM signals")[0][0] == 3


def test_rerun_with_the_intents_pending_decides_nothing_new(scripted, bars, pairs):
    first = run_scan(bars, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    pend = tuple(PendingOrder(intent_id=i.intent_id, symbol=i.symbol, action="enter",
                              qty=i.quantity, reserved=i.quantity * i.limit_price)
                 for i in first.intents[:2])
    pf = account().model_copy(update={"pending": pend})
    again = run_scan(bars, [slot(scripted, "enter", pf=pf)], LIMITS, pairs, NOW)
    reasons = {s["symbol"]: s["risk_reason"] for s in again.signals}
    assert reasons == {"BTC/USD": "already_pending", "ETH/USD": "already_pending",
                       "SOL/USD": "ok"}
    assert [d.symbol for d in again.decisions] == ["SOL/USD"]
    assert [i.intent_id for i in again.intents] == [first.intents[2].intent_id]


def test_risk_rejections_are_recorded_with_reasons(scripted, bars, pairs):
    pf = account(positions={"BTC/USD": held()})
    limits = RiskLimits(max_open_positions=2)
    res = run_scan(bars, [slot(scripted, "enter", pf=pf)], limits, pairs, NOW)
    by_symbol = {s["symbol"]: s for s in res.signals}
    assert by_symbol["BTC/USD"]["risk_decision"] == "rejected"
    assert by_symbol["BTC/USD"]["risk_reason"] == "duplicate_position"
    # one slot left under max_open_positions=2: ETH (sorted first) gets it, SOL is rejected
    assert by_symbol["ETH/USD"]["risk_decision"] in ("approved", "resized")
    assert (by_symbol["SOL/USD"]["risk_decision"], by_symbol["SOL/USD"]["risk_reason"]) == (
        "rejected", "max_positions")
    assert [i.symbol for i in res.intents] == ["ETH/USD"]
    assert res.scan["rejected"] == 2
    reasons = {(r["symbol"], r["reason"]) for r in res.scan["details"]["rejected"]}
    assert reasons == {("BTC/USD", "duplicate_position"), ("SOL/USD", "max_positions")}
    assert all(r["message"] for r in res.scan["details"]["rejected"])
    decisions = [e for e in res.events["active"] if e.kind == "decision"]
    assert {(e.symbol, e.reason) for e in decisions} >= reasons


def test_exit_without_position_is_a_noop_and_with_one_an_intent(scripted, bars, pairs):
    pf = account(positions={"ETH/USD": held("0.5", "1500")})
    res = run_scan(bars, [slot(scripted, "exit", pf=pf)], LIMITS, pairs, NOW)
    by_symbol = {s["symbol"]: s for s in res.signals}
    assert [(i.symbol, i.action, i.quantity) for i in res.intents] == [
        ("ETH/USD", "exit", Decimal("0.5"))]
    assert by_symbol["ETH/USD"]["risk_decision"] == "approved"
    for sym in ("BTC/USD", "SOL/USD"):
        assert (by_symbol[sym]["risk_decision"], by_symbol[sym]["risk_reason"]) == (None, "noop")
    assert {n["symbol"] for n in res.scan["details"]["noops"]} == {"BTC/USD", "SOL/USD"}
    assert res.scan["rejected"] == 0 and res.scan["signals"] == 3


def test_shadow_slot_trades_its_own_portfolio(scripted, bars, pairs):
    active = slot(scripted, "enter", pf=account(positions={"BTC/USD": held()}))
    shadow = slot(scripted, "enter", name="shadow2", pf=account("5000"))
    res = run_scan(bars, [active, shadow], LIMITS, pairs, NOW)
    rows = {(s["slot"], s["symbol"]): s for s in res.signals}
    assert len(rows) == 6
    assert rows[("active", "BTC/USD")]["risk_reason"] == "duplicate_position"
    assert rows[("shadow2", "BTC/USD")]["risk_decision"] == "approved"
    shadow_intents = [i for i in res.intents if i.slot == "shadow2"]
    assert len(shadow_intents) == 3
    assert all(i.quantity * i.limit_price <= Decimal("500.01") for i in shadow_intents)
    ids = [i.intent_id for i in res.intents]
    assert len(set(ids)) == len(ids) == 5
    assert res.scan_id == scan_id_for(BAR_TIME, [("active", "scripted", 3),
                                                 ("shadow2", "scripted", 3)])
    assert set(res.states) == {"active", "shadow2"}
    assert res.scan["details"]["slots"] == {"active": "scripted@3", "shadow2": "scripted@3"}


def test_risk_state_is_brought_to_now_and_halts_block_entries_not_exits(scripted, bars, pairs):
    fresh = run_scan(bars, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    state = fresh.states["active"]
    assert state.day == NOW.date() and state.peak_equity == Decimal("10000")
    assert any(e.kind == "day_rollover" for e in fresh.events["active"])
    killed = state.model_copy(update={"kill_switch": Halt(reason="test", since=NOW)})
    pf = account(positions={"ETH/USD": held("0.5", "1500")})
    res = run_scan(bars, [slot(scripted, "enter", pf=pf, state=killed)], LIMITS, pairs, NOW)
    assert {s["risk_reason"] for s in res.signals} == {"kill_switch"}  # checked first
    assert res.intents == [] and res.scan["details"]["halts"] == {"active": ["kill_switch"]}
    out = run_scan(bars, [slot(scripted, "exit", pf=pf, state=killed)], LIMITS, pairs, NOW)
    assert [(i.symbol, i.action) for i in out.intents] == [("ETH/USD", "exit")]


def test_stale_short_and_failing_symbols_are_recorded_holds(scripted, bars, pairs):
    data = dict(bars)
    data["ETH/USD"] = bars["ETH/USD"].filter(pl.col("ts") < BAR_TIME)  # newest bar missing
    data["SOL/USD"] = bars["SOL/USD"].tail(20)  # fewer than WARMUP_BARS = 50
    res = run_scan(data, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    reasons = {s["symbol"]: (s["action"], s["risk_reason"]) for s in res.signals}
    assert reasons["ETH/USD"][0] == "hold" and reasons["ETH/USD"][1].startswith("stale_data")
    assert reasons["SOL/USD"] == ("hold", "insufficient_history: 20 < 50 bars")
    assert [i.symbol for i in res.intents] == ["BTC/USD"]
    failing = run_scan(bars, [slot(scripted, "enter", fail=True)], LIMITS, pairs, NOW)
    assert failing.intents == [] and len(failing.scan["details"]["errors"]) == 3
    assert all("boom" in s["risk_reason"] for s in failing.signals)


def test_no_active_version_records_an_empty_scan(bars, pairs):
    res = run_scan(bars, [], LIMITS, pairs, NOW)
    assert res.signals == [] and res.intents == []
    assert res.scan["details"]["no_active_version"] is True
    assert res.scan_id == scan_id_for(BAR_TIME, [])
    assert res.scan["details"]["symbols"]["SOL/USD"]["regime"] is not None


def test_invalid_slots_are_refused(scripted, bars, pairs):
    with pytest.raises(ConfigError):
        run_scan(bars, [slot(scripted, "hold", name="shadow4")], LIMITS, pairs, NOW)
    with pytest.raises(ConfigError):
        run_scan(bars, [slot(scripted, "hold"), slot(scripted, "hold")], LIMITS, pairs, NOW)


def test_ema_cross_decision_is_the_last_row_of_full_history(bars, pairs):
    src = InProcessStrategy(STRATEGIES_ROOT / "ema_cross" / "v1.py")
    seen = set()
    for step in range(0, 120, 7):  # bars every 35 minutes over ten hours
        now = NOW - timedelta(minutes=5 * step)
        res = run_scan(bars, [SlotInput("active", src, account(), RiskState())], LIMITS,
                       pairs, now)
        for sig in res.signals:
            full = bars[sig["symbol"]].filter(pl.col("ts") <= sig["bar_time"])
            want = src.generate(full).row(-1, named=True)
            assert (sig["action"], sig["size"]) == (want["action"], want["size"])
            seen.add(sig["action"])
            if sig["action"] == "enter":
                assert sig["risk_decision"] in ("approved", "resized")
    assert "hold" in seen


class _PerSymbol:
    """A source with ``generate`` only (the older sandbox host): counts its calls."""

    def __init__(self, inner: InProcessStrategy) -> None:
        self.inner, self.calls = inner, []
        self.strategy_id, self.version = inner.strategy_id, inner.version
        self.warmup_bars = inner.warmup_bars

    def generate(self, bars, params=None):
        self.calls.append(("generate", bars.height))
        return self.inner.generate(bars, params)


class _Batched(_PerSymbol):
    """A source with ``generate_many``: ``fail`` symbols get a StrategyError, ``violate`` makes
    the whole call raise a SandboxViolation."""

    def __init__(self, inner, fail=(), violate=False) -> None:
        super().__init__(inner)
        self.fail, self.violate = set(fail), violate

    def generate_many(self, frames, params=None):
        self.calls.append(("generate_many", sorted(frames)))
        if self.violate:
            raise SandboxViolation("worker died")
        return {s: StrategyError(f"{s} broke") if s in self.fail else self.inner.generate(b, params)
                for s, b in frames.items()}


def test_one_generate_many_call_per_slot_with_per_symbol_errors(scripted, bars, pairs):
    data = dict(bars)
    data["SOL/USD"] = bars["SOL/USD"].tail(20)  # too short: not sent to the strategy
    ref = run_scan(data, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    batched = _Batched(scripted, fail={"ETH/USD"})
    res = run_scan(data, [slot(batched, "enter"), slot(batched, "enter", name="shadow1")],
                   LIMITS, pairs, NOW)
    assert batched.calls == [("generate_many", ["BTC/USD", "ETH/USD"])] * 2  # one per slot
    reasons = {(s["slot"], s["symbol"]): (s["action"], s["risk_reason"]) for s in res.signals}
    assert reasons["active", "ETH/USD"] == ("hold", "strategy_error: ETH/USD broke")
    assert reasons["active", "SOL/USD"] == ("hold", "insufficient_history: 20 < 50 bars")
    assert [i.symbol for i in res.intents] == ["BTC/USD", "BTC/USD"]
    btc = [s | {"scan_id": ""} for s in ref.signals if s["symbol"] == "BTC/USD"]
    assert [s | {"scan_id": ""} for s in res.signals
            if s["symbol"] == "BTC/USD" and s["slot"] == "active"] == btc
    dead = _Batched(scripted, violate=True)
    res = run_scan(bars, [slot(dead, "enter")], LIMITS, pairs, NOW)
    assert res.intents == [] and len(res.scan["details"]["errors"]) == 3
    assert all(s["risk_reason"] == "strategy_error: worker died" for s in res.signals)


def test_a_source_without_generate_many_is_called_per_symbol(scripted, bars, pairs):
    single = _PerSymbol(scripted)
    res = run_scan(bars, [slot(single, "enter")], LIMITS, pairs, NOW)
    assert single.calls == [("generate", 50)] * 3
    ref = run_scan(bars, [slot(scripted, "enter")], LIMITS, pairs, NOW)
    assert res.signals == ref.signals and res.intents == ref.intents


@pytest.mark.parametrize("unit", ["ns", "ms"])
def test_indicator_state_takes_the_newest_row_up_to_the_bar_in_any_time_unit(bars, unit):
    """Rows after the bar are ignored and the newest row up to it wins, whatever the column's
    time unit (the scan compares integer instants, not a polars expression)."""
    from trading_brain.engine.scan import _closed, _indicator_state

    early = BAR_TIME - timedelta(hours=1)
    frames = [b.with_columns(pl.lit(s).alias("symbol")) for s, b in bars.items()]
    full = compute_indicators(pl.concat(frames)).reverse()  # newest first: order must not matter
    assert full.filter(pl.col("ts") > early).height  # later rows are there, must be skipped
    windows = {s: _closed(b, early) for s, b in bars.items()}
    want = _indicator_state(windows, early, full)
    got = _indicator_state(windows, early,
                           full.with_columns(pl.col("ts").dt.cast_time_unit(unit)))
    for sym in SYMBOLS:
        row = full.filter((pl.col("symbol") == sym) & (pl.col("ts") == early)).row(0, named=True)
        assert want[sym]["indicators_at"] == early.isoformat()
        assert want[sym]["regime"] == row["regime"]
        assert got[sym] == want[sym]
