"""A live-mode world for executor tests: a real warehouse, ``KrakenExecution`` and ``KrakenMarket``
against the stateful fake Kraken, one ``active`` slot.

Contract:
- ``LiveWorld(path, fk)`` sets the fake account to ``CAPITAL`` USD and nothing else (so the
  ledger and the venue agree to the cent when the executor deposits the same capital), opens
  ``Store.open(path)`` and builds the venue (``KrakenExecution`` with a fast client: limiter
  waits and back-off are recorded, not slept) and the market (``KrakenMarket`` on the same fake).
- ``restart()``: new Store, adapter and market objects on the same warehouse file and the same
  venue (a process restart). ``tick()`` = one real ``run_tick`` over the active slot.
- ``intent(...)`` writes an order intent the way the scan does (``store.record_scan``).
- The clock is ``OffsetClock``: the wall clock plus an offset that tests move forward, so the
  fake's fill times (wall clock) are never in the executor's future.
- ``adds(cid)``: the AddOrder requests the fake received for one ``cl_ord_id``.
- ``reach(price)``: the market moves to ``price``: the ticker's last/bid/ask and the fake's fill
  price (venue triggers at that price fire). ``bar(o, h, l, c)``: a 1-minute bar with those
  prices closed just before the clock's now (served by OHLC), the fill price set to ``c``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.execution import KrakenExecution
from trading_brain.adapters.kraken.market import KrakenMarket
from trading_brain.domain.intents import OrderIntent, intent_id_for
from trading_brain.domain.risk import RiskLimits
from trading_brain.engine.executor.tick import SlotSetup, TickConfig, TickReport, run_tick
from trading_brain.settings import Home, KrakenSettings, Secrets, Settings
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_server import FakeKraken

CAPITAL = Decimal(10_000)
LIVE = {"execution": "kraken", "allow_live_orders": True}
KEYS = Secrets(kraken_api_key=SecretStr(fp.TEST_KEY), kraken_api_secret=SecretStr(fp.TEST_SECRET))


class OffsetClock:
    """The wall clock shifted by an offset that only grows (``advance``)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, d: timedelta) -> datetime:
        if d < timedelta(0):
            raise ValueError("OffsetClock cannot move backwards")
        self.offset += d
        return self.now()


class _Time:
    """Monotonic time whose sleep only advances it (the rate limiter never blocks a test)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def write_live_home(root: Path, fk: FakeKraken, monkeypatch: Any,
                    symbols: tuple[str, ...] = ("BTC/USD",)) -> Home:
    """A home that trades live on ``fk`` (market and execution ``kraken``, test keys in the
    environment through ``monkeypatch``)."""
    monkeypatch.setenv("KRAKEN_API_KEY", fp.TEST_KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", fp.TEST_SECRET)
    home = Home(root)
    home.root.mkdir(parents=True)
    listed = ", ".join(f'"{s}"' for s in symbols)
    home.config_file.write_text(
        'market = "kraken"\nexecution = "kraken"\nallow_live_orders = true\n'
        f'symbols = [{listed}]\n[kraken]\nrest_url = "{fk.rest_url}"\n'
        'public_calls_per_s = 20\nmax_retries = 0\n')
    return home


def live_settings(fk: FakeKraken, timeout_s: float = 2.0, **kw: object) -> Settings:
    return Settings(**LIVE, symbols=["BTC/USD"],  # type: ignore[arg-type]
                    kraken=KrakenSettings(rest_url=fk.rest_url, timeout_s=timeout_s), **kw)


def fast_client(fk: FakeKraken, timeout_s: float = 2.0) -> KrakenClient:
    t = _Time()
    return KrakenClient(fk.rest_url, timeout_s=timeout_s, max_retries=2,
                        public_calls_per_s=1000.0, backoff_base_s=0.01, rng=random.Random(1),
                        monotonic=t.monotonic, sleep=t.sleep)


class LiveWorld:
    """Warehouse + KrakenExecution + KrakenMarket on the fake, one active slot."""

    def __init__(self, path: Path, fk: FakeKraken, timeout_s: float = 2.0,
                 config: TickConfig | None = None) -> None:
        self.path, self.fk, self.timeout_s = path, fk, timeout_s
        self.config = config or TickConfig()
        self.clock = OffsetClock()
        with fk.state.lock:
            fk.state.private.balances = {"ZUSD": CAPITAL}
        self.settings = live_settings(fk, timeout_s)
        self.n = 0
        self.restart()

    def restart(self) -> None:
        """New Store, adapter and market objects on the same file and venue (a restart)."""
        self.store = Store.open(self.path)
        self.ex = KrakenExecution(self.settings, KEYS, self.clock,
                                  client=fast_client(self.fk, self.timeout_s), tier="pro")
        self.market = KrakenMarket(self.settings.kraken, self.clock,
                                   client=fast_client(self.fk, self.timeout_s))
        self.pairs = {"BTC/USD": self.ex.pair("BTC/USD")}

    def tick(self, limits: RiskLimits | None = None) -> TickReport:
        return run_tick(self.store, {"active": SlotSetup(self.ex, CAPITAL)}, self.market,
                        self.clock, self.pairs, limits or RiskLimits(), self.config)

    def intent(self, action: str, qty: str = "0.01", symbol: str = "BTC/USD",
               sl: float | None = None, tp: float | None = None) -> str:
        """Write one intent as the scan does; return its id."""
        self.n += 1
        now = self.clock.now()
        bar = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
        iid = intent_id_for("trend", 1, "active", symbol, bar + timedelta(seconds=self.n), action)
        scan = dict(scan_id=f"scan-{self.n}", bar_time=bar, started_at=now, duration_ms=1.0,
                    symbols=1, signals=1, intents=1, rejected=0, details={})
        self.store.record_scan(scan, [], [OrderIntent(
            intent_id=iid, scan_id=scan["scan_id"], strategy_id="trend", version=1,
            slot="active", symbol=symbol, bar_time=bar, action=action, quantity=Decimal(qty),
            reference_price=Decimal("30300"), stop_loss=sl, take_profit=tp,
            intent_type="day", created_at=now)])
        return iid

    def reach(self, price: str) -> list[str]:
        """Move the market to ``price`` (ticker and fills); the venue triggers that fire."""
        with self.fk.state.lock:
            t = self.fk.state.tickers["XXBTZUSD"]
            t["a"][0] = t["b"][0] = t["c"][0] = price
        return fp.set_price(self.fk.state, "XBTUSD", price)

    def bar(self, o: str, h: str, lo: str, c: str) -> None:
        """One closed 1m bar (open just before now's minute) and a forming one; fills at ``c``."""
        t = int(self.clock.now().timestamp()) // 60 * 60
        rows: list[list[Any]] = [[t - 60, o, h, lo, c, c, "1.0", 1],
                                 [t, c, c, c, c, c, "0.0", 0]]
        self.fk.state.set_ohlc("XXBTZUSD", 1, rows)
        with self.fk.state.lock:
            self.fk.state.private.prices["XXBTZUSD"] = Decimal(c)

    def adds(self, cid: str) -> list[dict[str, str]]:
        return [p for _, p, _ in self.fk.state.calls("AddOrder") if p.get("cl_ord_id") == cid]

    def venue_orders(self, cid: str) -> list[fp.FakeOrder]:
        with self.fk.state.lock:
            return [o for o in self.fk.state.private.orders.values() if o.cl_ord_id == cid]

    def status(self, iid: str) -> str:
        return self.store.intent_by_id(iid).status
