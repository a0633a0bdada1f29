"""What `simulate` runs and what it reports: the stored ``Plan``, its window of decision bars and
the summary read back from the warehouse (see ``trading_brain.app.simulate.loop`` for the loop)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading_brain.adapters.duckdb import Store
from trading_brain.domain.timeframes import as_utc, floor_time
from trading_brain.engine.scan import BAR
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import Clock, MarketData
from trading_brain.settings import Settings

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    """What to simulate (stored in the home so ``--resume`` continues the same run)."""

    market: str = "sim"
    days: float | None = None
    seed: int | None = None
    start: str | None = None  # ISO-8601 UTC, decision bars from here
    data: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()  # empty: the home's symbols
    end: str | None = None  # filled in by ``simulate``
    evolve: bool = False  # the nightly evolution cycle at each simulated midnight
    advisor: str | None = None  # with ``evolve``: "offline" / "anthropic"; None: offline

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        return cls(**{**raw, "data": tuple(raw["data"]), "symbols": tuple(raw["symbols"])})


def parse_time(text: str | None) -> datetime:
    if text is None:
        raise ConfigError("the simulation plan has no window")
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def steps_of(start: datetime, end: datetime) -> list[datetime]:
    """Bar close times of the decision bars with open time in [start, end)."""
    n = max(0, math.ceil((end - start) / BAR))
    return [start + BAR * (k + 1) for k in range(n)]


def window_of(plan: Plan, market: MarketData, symbols: list[str], warmup: int,
              clock: Clock) -> Plan:
    """Fill in ``start`` and ``end`` (decision bars in [start, end)); ``clock`` is the
    market's (replay: the data up to its ``now``)."""
    days = plan.days
    if plan.market == "replay":
        first, last = _replay_span(market, symbols, clock.now())
        start = parse_time(plan.start) if plan.start else first + BAR * warmup
        end = min(last + BAR, start + DAY * days) if days else last + BAR
    else:
        days = days or 30
        start = (parse_time(plan.start) if plan.start
                 else floor_time(datetime.now(UTC), "1d") - DAY * math.ceil(days))
        end = start + DAY * days
    start = floor_time(start, "5m")
    if end <= start:
        raise DataError(f"nothing to simulate between {start.isoformat()} and {end.isoformat()}")
    return Plan(plan.market, days, plan.seed, start.isoformat(), plan.data, plan.symbols,
                end.isoformat(), plan.evolve, plan.advisor)


def _replay_span(market: MarketData, symbols: list[str], until: datetime
                 ) -> tuple[datetime, datetime]:
    """(latest first 5m bar, earliest last 5m bar) over ``symbols`` in the replay data (bars
    opening before ``until``, the market's clock)."""
    lo = datetime(1970, 1, 1, tzinfo=UTC)
    frames = [market.candles(s, "5m", lo, until) for s in symbols]
    if any(f.is_empty() for f in frames):
        raise DataError("the replay data has no 5m bars for some symbol")
    return max(f["ts"][0] for f in frames), min(f["ts"][-1] for f in frames)


def summary(store: Store, settings: Settings, plan: Plan, ticks: int, slot: str = "active"
            ) -> dict[str, Any]:
    """The run's figures from the warehouse (see the module docstring)."""
    f = store.slot_figures(slot)
    cash = store.cash_balance(slot)
    equity, cash_s, value, fees = f.snapshot or (cash, cash, Decimal(0), Decimal(0))
    start = Decimal(repr(settings.starting_cash))
    return {
        "days": plan.days if plan.days is not None else round(
            (parse_time(plan.end) - parse_time(plan.start)) / DAY, 4),
        "symbols": list(settings.symbols),
        "ticks": ticks,
        "trades": f.positions,
        "orders": f.orders,
        "fills": f.fills,
        "final_equity": round(float(equity if f.snapshot else start), 2),
        "cash": round(float(cash_s), 2),
        "positions_value": round(float(value), 2),
        "fees_paid": round(float(fees), 4),
        "max_drawdown": round(float(f.max_drawdown or 0.0), 6),
        "halts": f.halts,
    }
