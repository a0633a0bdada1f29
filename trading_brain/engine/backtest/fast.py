"""The fast engine: vectorbt's ``from_signals`` Rust kernel (kernel.py), fill model of fills.py.

Contract: same inputs as the exact engine (bars with ``ts, open, high, low, close``; signals with
one row per bar). Signals are shifted one bar and filled at the open (``price=open``), with
``size_type="percent"``, ``accumulate=False``, ``upon_opposite_entry="ignore"``,
``stop_entry_price="fillprice"``, ``stop_exit_price="stoplimit"``. Inputs go in as plain numpy
arrays (a tz-aware pandas index slows vectorbt down ~20x) and results are read from the order
records, never through per-column pandas accessors (``simulate`` calls the Rust kernel that
from_signals calls, without importing vectorbt or pandas, see there). Exit reasons are
recovered from the bars: an exit on a bar where the entry's stop level was touched is a stop
exit (vectorbt checks stops first), otherwise it is a signal exit.

``run_fast`` tests one symbol; ``run_fast_many`` runs many signal sets over the same bars in one
call (independent columns, one result each); ``run_fast_portfolio`` runs several symbols with
aligned bars sharing one cash pool (columns in the given order, like the exact engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trading_brain.domain.fees import DEFAULT_TAKER_FEE
from trading_brain.domain.instruments import AssetPair
from trading_brain.engine import fills
from trading_brain.engine.backtest import kernel
from trading_brain.engine.backtest.exact import _symbol_of, check_sorted
from trading_brain.engine.backtest.metrics import BacktestResult, make_result
from trading_brain.errors import DataError


@dataclass(frozen=True, slots=True)
class Bars:
    """Plain arrays of one symbol's bars (``ts`` in UTC microseconds)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame) -> Bars:
        arr = [bars[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close")]
        return cls(bars["ts"].cast(pl.Int64).to_numpy(), *arr)


@dataclass(frozen=True, slots=True)
class Orders:
    """Shifted order arrays, (n bars x k columns): what executes at each bar's open.

    ``size``, ``sl`` and ``tp`` are only read on entry bars; when they are constant per column
    there they are stored as one row (1 x k), which vectorbt broadcasts without copying.
    """

    entries: np.ndarray
    exits: np.ndarray
    size: np.ndarray
    sl: np.ndarray
    tp: np.ndarray

    def at(self, name: str, rows: np.ndarray, j: int) -> np.ndarray:
        """Values of ``name`` ('size', 'sl', 'tp') at ``rows`` of column ``j``."""
        arr = getattr(self, name)
        return arr[rows if arr.shape[0] > 1 else np.zeros(len(rows), dtype=np.int64), j]


def shifted_orders(bars: pl.DataFrame, signal_sets: Sequence[pl.DataFrame]) -> Orders:
    """Stack signal frames as columns, shifted so the decision on bar t acts on bar t+1."""
    check_sorted(bars)
    n, k = bars.height, len(signal_sets)
    ent = np.zeros((k, n), dtype=bool)  # built row-wise (contiguous), transposed at the end
    ex = np.zeros((k, n), dtype=bool)
    vals: dict[str, list[np.ndarray | float]] = {"size": [], "stop_loss": [], "take_profit": []}
    ts = bars["ts"].cast(pl.Int64)
    for j, sig in enumerate(signal_sets):
        if sig.height != n or ("ts" in sig.columns and not sig["ts"].cast(pl.Int64).equals(ts)):
            raise DataError(f"signal set {j} is not aligned with the bars")
        action = sig["action"]
        ent[j, 1:] = (action == "enter").to_numpy()[:-1]
        ex[j, 1:] = (action == "exit").to_numpy()[:-1]
        for name in vals:
            vals[name].append(_column(sig[name].cast(pl.Float64), n))
    compact = [_compact(vals[key], ent) for key in vals]
    return Orders(np.ascontiguousarray(ent.T), np.ascontiguousarray(ex.T), *compact)


def _column(s: pl.Series, n: int) -> np.ndarray | float:
    """A signal column shifted one bar (nulls -> NaN), or its single value when constant."""
    nulls = s.null_count()
    if nulls == len(s):
        return np.nan
    if nulls == 0 and s.min() == s.max() and not s.is_nan().any():
        return float(s[0])
    col = np.empty(n)
    col[0] = np.nan
    col[1:] = s.to_numpy()[:-1]  # nulls become NaN
    return col


def _compact(columns: list[np.ndarray | float], ent: np.ndarray) -> np.ndarray:
    """(1 x k) when each column is constant on its entry bars, else the full (n x k) array."""
    consts = []
    for j, col in enumerate(columns):
        if not isinstance(col, np.ndarray):  # a constant (float)
            consts.append(col)
            continue
        v = col[ent[j]]
        if len(v) == 0:
            consts.append(np.nan)
        elif np.all(v == v[0]) or np.all(np.isnan(v)):
            consts.append(v[0])
        else:
            n = ent.shape[1]
            return np.column_stack([np.full(n, c) if isinstance(c, float) else c for c in columns])
    return np.asarray(consts, dtype=np.float64)[None, :]


def simulate(
    b: Bars | list[Bars], o: Orders, cash: float, fee: float, slippage: float, shared: bool = False
) -> np.ndarray:
    """Run vectorbt's Rust simulation kernel and return its order records.

    Calls the kernel behind ``Portfolio.from_signals`` directly (kernel.py: no vectorbt or pandas
    import) with the arguments from_signals would build for our settings; tests assert records
    identical to ``Portfolio.from_signals`` and to vectorbt's own dispatcher. Records have fields
    id, col, idx, size, price, fees, side.
    """
    bl = b if isinstance(b, list) else [b]
    n, k = o.entries.shape

    def col(name: str) -> np.ndarray:
        if len(bl) == 1:
            return getattr(bl[0], name)[:, None]
        return np.ascontiguousarray(np.column_stack([getattr(x, name) for x in bl]))

    group_lens = np.array([k] if shared else [1] * k, dtype=np.int64)
    call_seq = np.zeros((n, k), dtype=np.int64)
    if shared:
        call_seq[:] = np.arange(k, dtype=np.int64)
    records, _ = kernel.simulate_from_signals(
        (n, k),
        group_lens,
        np.full(len(group_lens), float(cash)),
        call_seq,
        entries=o.entries,
        exits=o.exits,
        direction=np.asarray(kernel.LONG_ONLY, dtype=np.int64),
        size=o.size,
        price=col("open"),
        size_type=np.asarray(kernel.SIZE_PERCENT, dtype=np.int64),
        fees=np.asarray(float(fee)),
        slippage=np.asarray(float(slippage)),
        accumulate=np.asarray(kernel.ACCUMULATE_DISABLED, dtype=np.int64),
        upon_opposite_entry=np.asarray(kernel.OPPOSITE_ENTRY_IGNORE, dtype=np.int64),
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        sl_stop=o.sl,
        tp_stop=o.tp,
        stop_entry_price=np.asarray(kernel.STOP_ENTRY_FILL_PRICE, dtype=np.int64),
        stop_exit_price=np.asarray(kernel.STOP_EXIT_STOP_LIMIT, dtype=np.int64),
        max_orders=n * k,
        max_logs=1,
        flex_2d=True,
    )
    return records


def run_fast(
    bars: pl.DataFrame,
    signals: pl.DataFrame,
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    pair: AssetPair | None = None,
) -> BacktestResult:
    """Backtest one symbol with vectorbt; ``fee`` is the taker rate (e.g. ``pair.fee_taker``).

    With ``pair``, entries the venue would refuse (lot rounding, ordermin, costmin) are counted
    in ``rejections``; the backtest itself does not round (see fills.py rule 6).
    """
    return run_fast_many(bars, [signals], cash, fee, slippage, pair)[0]


def run_fast_many(
    bars: pl.DataFrame,
    signal_sets: Sequence[pl.DataFrame],
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    pair: AssetPair | None = None,
) -> list[BacktestResult]:
    """Backtest many signal sets (e.g. parameter sets) over the same bars in one vectorbt call."""
    if not signal_sets:
        return []
    b = Bars.of(bars)
    o = shifted_orders(bars, signal_sets)
    rec = simulate(b, o, cash, fee, slippage)
    name = pair.symbol if pair else _symbol_of(bars)
    return [
        results_from_records(rec, [j], [b], o, cash, [name], [pair])
        for j in range(o.entries.shape[1])
    ]


def run_fast_portfolio(
    bars: Mapping[str, pl.DataFrame],
    signals: Mapping[str, pl.DataFrame],
    cash: float = 10_000.0,
    fee: float = DEFAULT_TAKER_FEE,
    slippage: float = 0.0005,
    pairs: Mapping[str, AssetPair] | None = None,
    order: Sequence[str] | None = None,
) -> BacktestResult:
    """Several symbols with aligned bars sharing one cash pool (one vectorbt group)."""
    symbols = list(order) if order is not None else sorted(bars)
    frames = [bars[s].sort("ts") for s in symbols]
    ts0 = frames[0]["ts"].cast(pl.Int64)
    if any(not f["ts"].cast(pl.Int64).equals(ts0) for f in frames[1:]):
        raise DataError("run_fast_portfolio needs the same bar times for every symbol")
    bl = [Bars.of(f) for f in frames]
    per = [shifted_orders(f, [signals[s]]) for f, s in zip(frames, symbols, strict=True)]
    o = Orders(*(_stack([getattr(p, a) for p in per]) for a in Orders.__slots__))
    rec = simulate(bl, o, cash, fee, slippage, shared=True)
    pair_list = [(pairs or {}).get(s) for s in symbols]
    return results_from_records(rec, list(range(len(symbols))), bl, o, cash, symbols, pair_list)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    rows = max(a.shape[0] for a in arrays)
    return np.hstack([np.broadcast_to(a, (rows, a.shape[1])) for a in arrays])


def results_from_records(
    rec: np.ndarray,
    cols: list[int],
    bl: list[Bars],
    o: Orders,
    cash: float,
    symbols: list[str],
    pairs: list[AssetPair | None],
) -> BacktestResult:
    """One BacktestResult from the order records of ``cols`` (one column, or one cash group)."""
    n = len(bl[0].ts)
    cash_delta = np.zeros(n)
    value_pos = np.zeros(n)
    in_market = np.zeros(n, dtype=bool)
    parts, fees, rejections = [], 0.0, 0
    for b, j, sym, pair in zip(bl, cols, symbols, pairs, strict=True):
        r = rec[rec["col"] == j]
        r = r[np.argsort(r["idx"], kind="stable")]
        signed = np.where(r["side"] == 0, r["size"], -r["size"])
        flow = np.where(
            r["side"] == 0,
            -(r["size"] * r["price"] + r["fees"]),
            r["size"] * r["price"] - r["fees"],
        )
        cash_delta += np.bincount(r["idx"], weights=flow, minlength=n)  # np.add.at is ~10x slower
        pos = np.cumsum(np.bincount(r["idx"], weights=signed, minlength=n))
        held = pos > 0.0  # a sell is exactly the position, so flat is exactly 0.0
        value_pos += pos * b.close
        in_market |= held
        fees += float(r["fees"].sum())
        parts.append(_trades(r, b, o, j, sym))
        if pair is not None:
            buys = r[r["side"] == 0]
            rejections += sum(
                fills.would_reject(q, p, pair)
                for q, p in zip(buys["size"], buys["price"], strict=True)
            )
    equity = cash + np.cumsum(cash_delta) + value_pos
    trades = pl.concat(parts) if parts else pl.DataFrame()
    return make_result(
        bl[0].ts, equity, trades, fees, float(in_market.mean()) if n else 0.0, rejections
    )


def _trades(r: np.ndarray, b: Bars, o: Orders, j: int, symbol: str) -> pl.DataFrame:
    buys, sells = r[r["side"] == 0], r[r["side"] == 1]
    m = len(sells)
    if len(buys) not in (m, m + 1):
        raise DataError("unexpected vectorbt order sequence (accumulation?)")
    ei, xi = buys["idx"], sells["idx"]
    ep, xp = buys["price"], sells["price"]
    qty = buys["size"]
    sl_level = ep[:m] * (1 - o.at("sl", ei[:m], j))
    tp_level = ep[:m] * (1 + o.at("tp", ei[:m], j))
    xo, xh, xl = b.open[xi], b.high[xi], b.low[xi]
    sl_hit = (xo <= sl_level) | ((xl <= sl_level) & (sl_level <= xh))
    tp_hit = (tp_level <= xo) | ((xl <= tp_level) & (tp_level <= xh))
    reason = np.where(sl_hit, "stop_loss", np.where(tp_hit, "take_profit", "signal")).tolist()
    last = b.close[-1]
    exit_price = np.concatenate([xp, [last] * (len(buys) - m)])
    exit_fee = np.concatenate([sells["fees"], [0.0] * (len(buys) - m)])
    pnl = (exit_price - ep) * qty - buys["fees"] - exit_fee
    utc = pl.Datetime("us", "UTC")
    exit_time = pl.Series(b.ts[xi], dtype=pl.Int64).cast(utc)
    if len(buys) > m:  # the open position: no exit time
        exit_time = exit_time.append(pl.Series([None] * (len(buys) - m), dtype=utc))
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(buys),
            "entry_time": pl.Series(b.ts[ei], dtype=pl.Int64).cast(utc),
            "exit_time": exit_time,
            "entry_price": ep,
            "exit_price": exit_price,
            "quantity": qty,
            "pnl": pnl,
            "fees": buys["fees"] + exit_fee,
            "exit_reason": reason + [None] * (len(buys) - m),
        },
        schema_overrides={"symbol": pl.String, "exit_reason": pl.String},  # also with no trade
    )
