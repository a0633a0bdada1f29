"""Backtest and optimise a strategy version: the service behind `trading-brain backtest|optimize`.

Contract (no click here; every failure is a one-line ConfigError / DataError / StrategyError):
- Strategy code always runs in ONE sandbox worker (``VersionWorker``: the version's worker from
  a ``ports.StrategyWorkers`` service, booting in the background while the data loads).
  ``generate`` is called once per parameter set per symbol over the whole history
  (``signal_sets``: every set of a sweep in one round trip per symbol): shipped/registered
  versions pass the look-ahead check, so batch evaluation equals bar-by-bar evaluation, and
  every sub-window (walk-forward) is a slice of those signals.
- Params: the strategy's defaults (from the worker's ``params_schema``) overlaid by the caller's;
  unknown keys and values outside the schema's type/bounds are a ConfigError naming the key.
- Data (``check_gaps``): bars per symbol, sorted. Missing open times between consecutive bars are
  gaps; gaps of up to ``large_gap_bars`` (one day of bars, at least 3) are venue gaps and fine (the
  fill model simply uses the next bar's open). Data is *gap-ridden*, a DataError, when a symbol has
  more than ``MAX_LARGE_GAPS`` larger gaps or misses more than ``MAX_MISSING`` of its span.
- Engines: ``exact`` (bar replay) or ``fast`` (vectorbt's Rust kernel, called without importing
  vectorbt or pandas); several symbols share one cash pool. ``backtest_json`` gives
  ``{strategy, engine, params, metrics, trades}``.
- Optimise: see ``optimizing`` (grid sweep, ranking, walk-forward).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.engine.backtest.metrics import BacktestResult
from trading_brain.errors import ConfigError, DataError, StrategyError
from trading_brain.ports import StrategyWorkers
from trading_brain.settings import Settings

METRIC_KEYS = ("final_equity", "total_return", "sharpe", "sortino", "max_drawdown", "win_rate",
               "n_trades", "fees_paid", "exposure", "profit_factor")
SHARPE_BASIS = "daily returns, annualised with √365"
METRIC_UNITS = {  # what each JSON metric is (the text mode prints fractions as percents)
    "final_equity": "quote currency", "total_return": "fraction (0.05 = +5 %)",
    "sharpe": SHARPE_BASIS, "sortino": SHARPE_BASIS, "max_drawdown": "fraction (0.25 = -25 %)",
    "win_rate": "fraction of closed trades", "n_trades": "closed trades",
    "fees_paid": "quote currency", "exposure": "fraction of bars in the market",
    "profit_factor": "gross profit / gross loss (null: no loss)"}
ENGINES = ("exact", "fast")
MAX_LARGE_GAPS = 3
MAX_MISSING = 0.05
DAY_US = 86_400_000_000
Bars = Mapping[str, pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Costs:
    """Starting cash and per-fill costs (fee = taker rate, slippage on market orders)."""

    cash: float = 10_000.0
    fee: float = DEFAULT_TAKER_FEE
    slippage: float = 0.0005

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash > 0):
            raise ConfigError(f"--cash must be a positive amount, got {self.cash}")
        for name in ("fee", "slippage"):
            v = getattr(self, name)
            if not (0.0 <= v < 0.5):
                raise ConfigError(f"--{name} must be a fraction in [0, 0.5), got {v}")


# --- inputs ---------------------------------------------------------------------------------------
def one_line(text: str) -> str:
    """Collapse a multi-line message (e.g. a pydantic report) into one line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if not ln.startswith("For further information"))


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """Parse ``--params``/``--grid`` JSON into a dict (``{}`` when absent)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{option} is not valid JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object such as '{{\"fast\": 12}}'")
    return value


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO-8601 date or time (naive = UTC) for ``--start``/``--end``."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} must be an ISO-8601 date or time, got {text!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def check_params(params: Mapping[str, Any], schema: dict[str, Any], ref: str) -> None:
    """Unknown keys and values of the wrong type or out of bounds -> ConfigError naming the key."""
    props = schema.get("properties", {})
    for key, value in params.items():
        if key not in props:
            raise ConfigError(f"unknown parameter {key!r} for {ref}; known: {', '.join(props)}")
        problem = _value_problem(value, props[key])
        if problem:
            raise ConfigError(f"parameter {key!r} of {ref}: {value!r} {problem}")


def _value_problem(v: Any, spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    number = isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "integer" and not (number and float(v).is_integer()):
        return "is not an integer"
    if kind == "number" and not (number and math.isfinite(v)):
        return "is not a finite number"
    if kind == "boolean" and not isinstance(v, bool):
        return "is not true/false"
    if kind == "string" and not isinstance(v, str):
        return "is not a string"
    if "enum" in spec and v not in spec["enum"]:
        return f"is not one of {spec['enum']}"
    if number:
        for bound, bad in (("minimum", v < spec.get("minimum", -math.inf)),
                           ("maximum", v > spec.get("maximum", math.inf)),
                           ("exclusiveMinimum", v <= spec.get("exclusiveMinimum", -math.inf)),
                           ("exclusiveMaximum", v >= spec.get("exclusiveMaximum", math.inf))):
            if bad:
                return f"is outside the allowed range ({bound} {spec[bound]})"
    return None


# --- the sandbox worker ------------------------------------------------------------------------
class VersionWorker:
    """One strategy version's worker from a ``ports.StrategyWorkers`` service, named by its ref
    in every message; ``open`` builds a private service (closed on exit)."""

    def __init__(self, workers: StrategyWorkers, ref: str, source: str, *,
                 owned: bool = False) -> None:
        self.ref, self.workers, self.owned = ref, workers, owned
        self.worker = workers.get(ref, source)  # boots in the background

    @classmethod
    def open(cls, settings: Settings, ref: str, source: str) -> VersionWorker:
        from trading_brain.app.research.register import open_workers

        return cls(open_workers(settings), ref, source, owned=True)

    def defaults(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(json_schema, defaults) of the strategy's Params."""
        try:
            return self.worker.params_schema()
        except StrategyError as e:
            raise self._error(e) from None

    def generate(self, bars: pl.DataFrame, params: dict[str, Any]) -> pl.DataFrame:
        """Signals over ``bars``; an invalid param value is a one-line ConfigError."""
        try:
            return self.worker.generate(bars, params)
        except StrategyError as e:
            raise self._error(e) from None

    def signals(self, bars: Bars, params: dict[str, Any]) -> dict[str, pl.DataFrame]:
        return {sym: self.generate(b, params) for sym, b in bars.items()}

    def signal_sets(self, bars: Bars, sets: Sequence[dict[str, Any]]
                    ) -> list[dict[str, pl.DataFrame] | ConfigError]:
        """``signals`` of every parameter set, in ONE sandbox round trip per symbol: per set its
        signals, or the one-line ConfigError of a set the strategy's ``Params`` refuse; any
        other strategy failure raises (as ``generate`` would)."""
        try:
            per_symbol = {sym: self.worker.generate_sets(b, sets) for sym, b in bars.items()}
        except StrategyError as e:
            raise self._error(e) from None
        out: list[dict[str, pl.DataFrame] | ConfigError] = []
        for i in range(len(sets)):
            got: dict[str, pl.DataFrame] = {}
            refused: ConfigError | None = None
            for sym, results in per_symbol.items():
                r = results[i]
                if isinstance(r, pl.DataFrame):
                    got[sym] = r
                    continue
                e = self._error(r)
                if not isinstance(e, ConfigError):
                    raise e
                refused = refused or e
            out.append(refused if refused is not None else got)
        return out

    def _error(self, e: StrategyError) -> StrategyError | ConfigError:
        msg = one_line(str(e))
        if msg.startswith("invalid params"):
            return ConfigError(f"{self.ref}: {msg}")
        return type(e)(f"{self.ref}: {msg}")

    def __enter__(self) -> VersionWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.workers.close()


# --- data ----------------------------------------------------------------------------------------
def window(bars: Bars, start: datetime | None, end: datetime | None) -> dict[str, pl.DataFrame]:
    """Bars with open time in ``[start, end)``; symbols left without bars are dropped."""
    out = {}
    for sym, b in bars.items():
        if start is not None:
            b = b.filter(pl.col("ts") >= start)
        if end is not None:
            b = b.filter(pl.col("ts") < end)
        if b.height:
            out[sym] = b
    if not out:
        raise DataError("no bars in the requested time window")
    return out


def check_gaps(bars: Bars) -> None:
    """Raise DataError if a symbol's bars are too few or gap-ridden (see the module docstring)."""
    for sym, b in bars.items():
        if b.height < 2:
            raise DataError(f"{sym}: only {b.height} bar(s); a backtest needs at least 2")
        ts = b["ts"].cast(pl.Int64).to_numpy()
        step = float(np.median(np.diff(ts)))
        missing = np.rint(np.diff(ts) / step).astype(np.int64) - 1
        limit = large_gap_bars(step)
        large = int((missing > limit).sum())
        share = missing.sum() / (len(ts) + missing.sum())
        hint = "pick a cleaner window with --start/--end"
        if large > MAX_LARGE_GAPS:
            raise DataError(f"{sym}: data has {large} gaps larger than {limit} bars (largest "
                            f"{missing.max()} bars, {share:.1%} of bars missing); {hint}")
        if share > MAX_MISSING:
            holes = int((missing > 0).sum())
            raise DataError(f"{sym}: data misses {share:.1%} of its bars in {holes} gaps "
                            f"(limit {MAX_MISSING:.0%}); {hint}")


def large_gap_bars(step_us: float) -> int:
    """Gaps up to one day of bars (at least 3) are ordinary venue gaps."""
    return max(3, int(DAY_US // max(step_us, 1.0)))


def data_digest(bars: Bars) -> str:
    """sha256 of the bars' times and prices (identifies the data of a stored backtest)."""
    h = hashlib.sha256()
    for sym in sorted(bars):
        b = bars[sym]
        h.update(sym.encode())
        h.update(b["ts"].cast(pl.Int64).to_numpy().tobytes())
        for c in ("open", "high", "low", "close"):
            h.update(b[c].cast(pl.Float64).to_numpy().tobytes())
    return h.hexdigest()


# --- backtest ------------------------------------------------------------------------------------
def run_backtest(bars: Bars, signals: Bars, engine: str, costs: Costs) -> BacktestResult:
    """A ``BacktestResult`` of all symbols sharing one cash pool (symbols in sorted order)."""
    order = sorted(bars)
    if engine == "exact":
        from trading_brain.engine.backtest.exact import run_exact_portfolio

        return run_exact_portfolio(bars, signals, costs.cash, costs.fee, costs.slippage,
                                   order=order)
    if engine != "fast":
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    require_aligned(bars)
    from trading_brain.engine.backtest.fast import run_fast_portfolio

    return run_fast_portfolio(bars, signals, costs.cash, costs.fee, costs.slippage, order=order)


def require_aligned(bars: Bars) -> None:
    frames = list(bars.values())
    ts0 = frames[0]["ts"]
    if any(not f["ts"].equals(ts0) for f in frames[1:]):
        raise DataError("the fast engine needs the same bar times for every symbol; "
                        "use --engine exact for symbols with different bars")


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics in ``METRIC_KEYS`` order; non-finite numbers become null."""
    out: dict[str, Any] = {}
    for k in METRIC_KEYS:
        v = metrics[k]
        out[k] = int(v) if k == "n_trades" else (float(v) if math.isfinite(v) else None)
    return out


def backtest_json(ref: str, engine: str, params: dict[str, Any], result: BacktestResult
                  ) -> dict[str, Any]:
    """``{strategy, engine, params, metrics, trades}`` with ISO-8601 UTC times."""
    body = result.to_json_dict()
    return {"strategy": ref, "engine": engine, "params": params,
            "metrics": json_metrics(body["metrics"]), "trades": body["trades"]}


def backtest_record(out: dict[str, Any], result: BacktestResult, source_sha: str, bars: Bars,
                    costs: Costs) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(row, trades) for ``Store.save_backtest``; backtest_id = sha256 of every input."""
    sid, _, ver = out["strategy"].rpartition("@")
    inputs = {"strategy": out["strategy"], "source_sha256": source_sha, "params": out["params"],
              "engine": out["engine"], "cash": costs.cash, "fee": costs.fee,
              "slippage": costs.slippage, "data": data_digest(bars)}
    bid = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    row = {"backtest_id": bid, "strategy_id": sid, "version": int(ver), "engine": out["engine"],
           "params": out["params"], "symbols": sorted(bars),
           "start_ts": min(_ts(b, 0) for b in bars.values()),
           "end_ts": max(_ts(b, -1) for b in bars.values()),
           "cash": costs.cash, "fee": costs.fee, "slippage": costs.slippage,
           "metrics": out["metrics"], "created_at": datetime.now(UTC)}
    return row, result.trades.to_dicts()


def _ts(bars: pl.DataFrame, i: int) -> datetime:
    """The open time of bar ``i`` (bars are sorted by ``ts``)."""
    return bars.get_column("ts")[i]
