"""`trading-brain backtest` and `trading-brain optimize` (service: app/research/backtest.py).

Both read bars from candle files (``--data``, the formats of ``import-ohlcv``; symbol from
``--symbol``, else the file name, else its stem) or from the home's warehouse (``--symbols``,
``--start``, ``--end``, ``--timeframe`` 5m by default), run the strategy only inside the sandbox
worker and print text or, with ``--json``, one JSON object. Bad input is a one-line error (exit 2).
Heavy modules are imported inside the functions: ``--help`` stays fast; neither command imports
vectorbt or pandas (the fast engine calls vectorbt's Rust kernel directly).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trading_brain.commands.common import emit_json, home_of, json_option, progress_bar
from trading_brain.domain.fees import DEFAULT_TAKER_FEE

if TYPE_CHECKING:
    import polars as pl

    from trading_brain.adapters.duckdb import Store
    from trading_brain.app.research.backtest import Bars, VersionWorker
    from trading_brain.errors import ConfigError
    from trading_brain.settings import Settings

COSTS_HELP = {"cash": "Starting cash shared by all symbols.", "fee": "Fee rate per fill (taker).",
              "slippage": "Slippage fraction on market orders."}


def data_options(f: Callable) -> Callable:
    """Options shared by both commands: strategy, data source, costs, --json."""
    opts = [
        click.option("--strategy", "ref", default=None, help="Strategy ID or ID@VERSION "
                                                             "(required)."),
        click.option("--data", multiple=True, help="Candle file or folder (repeatable)."),
        click.option("--symbol", default=None, help="Symbol of the --data bars (default: from "
                                                    "the file name)."),
        click.option("--symbols", multiple=True, help="Warehouse symbols (repeat or comma-list)."),
        click.option("--start", default=None, help="First bar open time (ISO-8601, UTC)."),
        click.option("--end", default=None, help="End of the window (exclusive)."),
        click.option("--timeframe", default=None, help="5m, 1h or 1d (warehouse default 5m)."),
        click.option("--cash", type=float, default=10_000.0, show_default=True,
                     help=COSTS_HELP["cash"]),
        click.option("--fee", type=float, default=DEFAULT_TAKER_FEE, show_default=True,
                     help=COSTS_HELP["fee"]),
        click.option("--slippage", type=float, default=0.0005, show_default=True,
                     help=COSTS_HELP["slippage"]),
        json_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _setup(ctx: click.Context,
           ref: str | None) -> tuple[Settings, Store | None, tuple[str, int, str, str | None]]:
    """(settings, store or None, strategy source) of this home."""
    from trading_brain.app.research.register import strategy_source
    from trading_brain.errors import ConfigError
    from trading_brain.settings import load_settings

    if not ref:
        raise ConfigError("--strategy ID[@VERSION] is required "
                          "(see `trading-brain strategies list`)")

    home = home_of(ctx)
    store = None
    if home.is_initialised():
        from trading_brain.adapters.duckdb import Store

        store = Store.open(home.warehouse)
    return load_settings(home), store, strategy_source(ref, store)


def _check_inputs(opts: dict[str, Any]) -> None:
    """Cheap checks of the data options (before the sandbox worker starts); normalises opts."""
    from trading_brain.app.research.backtest import parse_time
    from trading_brain.errors import ConfigError, DataError

    opts["start"] = parse_time(opts["start"], "--start")
    opts["end"] = parse_time(opts["end"], "--end")
    opts["symbols"] = [s for item in opts["symbols"] for s in item.split(",") if s.strip()]
    if opts["data"] and opts["symbols"]:
        raise ConfigError("give either --data or --symbols, not both")
    if not opts["data"] and not opts["symbols"]:
        raise ConfigError("give --data PATH, or --symbols with --start/--end for warehouse bars")
    for p in opts["data"]:
        if not Path(p).exists():
            raise DataError(f"no such file or folder: {p}")


def _load(ctx: click.Context, store: Store | None, opts: dict[str, Any]) -> dict[str, Any]:
    """Bars per symbol from --data files or the warehouse, windowed and gap-checked."""
    from trading_brain.app.research.backtest import check_gaps, window

    start, end = opts["start"], opts["end"]
    if opts["data"]:
        from trading_brain.app.research.register import load_bars

        bars = load_bars(list(opts["data"]), opts["symbol"], opts["timeframe"])
    else:
        bars = _warehouse_bars(ctx, store, opts["symbols"], opts["timeframe"] or "5m", start, end)
    if start is not None or end is not None:
        bars = window(bars, start, end)
    check_gaps(bars)
    return bars


def _warehouse_bars(ctx: click.Context, store: Store | None, symbols: list[str], timeframe: str,
                    start: datetime | None, end: datetime | None) -> dict[str, pl.DataFrame]:
    from trading_brain.commands.common import require_initialised
    from trading_brain.domain.candles import BARS_COLUMNS
    from trading_brain.domain.instruments import parse_symbol
    from trading_brain.domain.timeframes import parse_timeframe
    from trading_brain.errors import DataError

    if store is None:
        require_initialised(home_of(ctx))
        raise AssertionError("an initialised home has a store")  # require_initialised raised
    syms = [parse_symbol(s) for s in symbols]
    df = store.read_candles(syms, parse_timeframe(timeframe), start, end)
    if df.is_empty():
        raise DataError(f"no {timeframe} candles for {', '.join(syms)} in the warehouse "
                        "for that window; run `trading-brain bootstrap` or `import-ohlcv`")
    return {s: part.sort("ts").select(BARS_COLUMNS)
            for (s,), part in df.partition_by("symbol", as_dict=True).items()}


def _guarded(fn: Callable[[], None]) -> None:
    """Run ``fn``; re-raise any project error with its message on one line."""
    from trading_brain.app.research.backtest import one_line
    from trading_brain.errors import TradingBrainError

    try:
        fn()
    except TradingBrainError as e:
        msg = one_line(str(e))
        if msg == str(e):
            raise
        try:
            short = type(e)(msg)
        except TypeError:  # an error type with a richer constructor: keep the original
            raise e from None
        raise short from None


@click.command()
@data_options
@click.option("--params", default=None, help="JSON object of parameter overrides.")
@click.option("--engine", default="exact", show_default=True,
              help="exact (bar replay) or fast (vectorbt); both give the same trades.")
@click.pass_context
def backtest(ctx: click.Context, ref: str | None, params: str | None, engine: str, as_json: bool,
             **opts: Any) -> None:
    """Backtest a strategy version over candle files or warehouse bars.

    Strategy code runs in the sandbox worker; several symbols share one cash pool. Data with more
    than 3 gaps longer than a day of bars, or with over 5 % of its bars missing, is refused.
    Inside an initialised home the result is stored (backtests, backtest_trades).
    """
    _guarded(lambda: _backtest(ctx, ref, params, engine, as_json, opts))


def _backtest(ctx: click.Context, ref: str | None, params: str | None, engine: str, as_json: bool,
              opts: dict[str, Any]) -> None:
    from trading_brain.app.research import backtest as bt
    from trading_brain.engine.registry import sha256

    costs = bt.Costs(opts["cash"], opts["fee"], opts["slippage"])
    if engine not in bt.ENGINES:
        raise bt.ConfigError(f"unknown engine {engine!r}; use one of {', '.join(bt.ENGINES)}")
    overrides = bt.json_object(params, "--params")
    _check_inputs(opts)
    settings, store, (sid, ver, source, _path) = _setup(ctx, ref)
    name = f"{sid}@{ver}"
    with bt.VersionWorker.open(settings, name, source) as worker:
        bars = _load(ctx, store, opts)
        schema, defaults = worker.defaults()
        bt.check_params(overrides, schema, name)
        full = {**defaults, **overrides}
        signals = worker.signals(bars, full)
    result = bt.run_backtest(bars, signals, engine, costs)
    out = bt.backtest_json(name, engine, full, result)
    stored = None
    if store is not None:
        row, trades = bt.backtest_record(out, result, sha256(source), bars, costs)
        store.save_backtest(row, trades)
        stored = row["backtest_id"]
    if as_json:
        emit_json(out)
    else:
        _print_backtest(out, bars, stored)


def _print_backtest(out: dict[str, Any], bars: dict[str, Any], stored: str | None) -> None:
    m = out["metrics"]
    n = sum(b.height for b in bars.values())
    click.echo(f"{out['strategy']} ({out['engine']} engine) on {', '.join(sorted(bars))}: "
               f"{n} bars, params {out['params']}")
    click.echo(f"final equity {m['final_equity']:.2f}  return {m['total_return']:+.2%}  "
               f"sharpe {m['sharpe']:.2f}  sortino {m['sortino']:.2f}  "
               f"max drawdown {m['max_drawdown']:.2%}")
    pf = "inf" if m["profit_factor"] is None else f"{m['profit_factor']:.2f}"
    opened = sum(t["exit_time"] is None for t in out["trades"])
    click.echo(f"{m['n_trades']} closed trades (+{opened} open)  win rate {m['win_rate']:.1%}  "
               f"fees {m['fees_paid']:.2f}  exposure {m['exposure']:.1%}  profit factor {pf}")
    if stored:
        click.echo(f"stored as backtest {stored[:16]}")


@click.command()
@data_options
@click.option("--grid", default=None, help='JSON object: parameter -> list of values, e.g. '
                                           '\'{"fast": [5, 9], "slow": [21, 50]}\' (required).')
@click.option("--objective", default="sharpe", show_default=True,
              help="Ranking metric: sharpe, sortino, total_return, final_equity, profit_factor, "
                   "win_rate (higher is better) or max_drawdown (lower is better).")
@click.option("--train", type=float, default=0.7, show_default=True,
              help="Walk-forward: fraction of bars before the first test window.")
@click.option("--folds", type=int, default=1, show_default=True,
              help="Walk-forward: number of anchored test windows after the training part.")
@click.pass_context
def optimize(ctx: click.Context, ref: str | None, grid: str | None, objective: str, train: float,
             folds: int, as_json: bool, **opts: Any) -> None:
    """Sweep a parameter grid with the fast engine, best first, plus a walk-forward split.

    The grid's cartesian product is swept (other params keep their defaults; combinations the
    strategy's Params refuse are skipped with a note). Walk-forward (anchored): the bars after
    the first --train fraction form --folds test windows; each fold picks the best set on all
    earlier bars and scores it on its window, so the in-sample/out-of-sample gap shows over-fit.
    """
    _guarded(lambda: _optimize(ctx, ref, grid, objective, train, folds, as_json, opts))


def _optimize(ctx: click.Context, ref: str | None, grid_text: str | None, objective: str,
              train: float, folds: int, as_json: bool, opts: dict[str, Any]) -> None:
    from trading_brain.app.research import backtest as bt
    from trading_brain.app.research import optimize as opt
    costs = bt.Costs(opts["cash"], opts["fee"], opts["slippage"])
    opt.ranking([], objective)  # validates the objective and walk-forward before any work
    opt.check_walk_forward(train, folds)
    grid = bt.json_object(grid_text, "--grid")
    opt.grid_sets(grid, {})  # validates the grid's shape before any work
    _check_inputs(opts)
    settings, store, (sid, ver, source, _path) = _setup(ctx, ref)
    name = f"{sid}@{ver}"
    with bt.VersionWorker.open(settings, name, source) as worker:
        bars = _load(ctx, store, opts)
        schema, defaults = worker.defaults()
        sets = opt.grid_sets(grid, defaults)
        for key, values in grid.items():
            for v in values:
                bt.check_params({key: v}, schema, name)
        params, signal_sets, skipped = _generate_all(worker, bars, sets, as_json)
    metrics = opt.sweep(bars, signal_sets, costs)
    order = opt.ranking(metrics, objective)
    out = {"strategy": name,
           "results": [{"params": params[i], "metrics": bt.json_metrics(metrics[i])}
                       for i in order],
           "walk_forward": opt.walk_forward(bars, signal_sets, params, costs, objective, train,
                                           folds)}
    if skipped:
        click.echo(f"note: skipped {len(skipped)} invalid combination(s), e.g. {skipped[0]}",
                   err=True)
    if as_json:
        emit_json(out)
    else:
        _print_optimize(out, list(grid), objective)


def _generate_all(worker: VersionWorker, bars: Bars, sets: list[dict[str, Any]],
                  quiet: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Signals of every valid set: each DISTINCT set generated once, all of them in one sandbox
    round trip per symbol (``VersionWorker.signal_sets``; in chunks when a progress bar shows).

    Identical parameter sets (e.g. a grid listing a value twice) share one signal frame object,
    which the sweep then simulates once.
    """
    import json

    from trading_brain.errors import ConfigError

    index: dict[str, int] = {}
    distinct: list[dict[str, Any]] = []
    for p in sets:
        key = json.dumps(p, sort_keys=True, default=str)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(p)
    shown = not quiet and sys.stderr.isatty()
    chunk = 25 if shown else len(distinct)
    got: list[dict[str, pl.DataFrame] | ConfigError] = []
    with progress_bar("generate", shown) as update:
        for lo in range(0, len(distinct), chunk):
            got += worker.signal_sets(bars, distinct[lo:lo + chunk])
            update(len(got), len(distinct), "")
    params, signal_sets, skipped = [], [], []
    for p in sets:
        one = got[index[json.dumps(p, sort_keys=True, default=str)]]
        if isinstance(one, ConfigError):  # e.g. fast >= slow: a cross-field rule of Params
            skipped.append(str(one))
        else:
            signal_sets.append(one)
            params.append(p)
    if not params:
        raise ConfigError(f"no valid parameter combination in --grid; first: {skipped[0]}")
    return params, signal_sets, skipped


def _print_optimize(out: dict[str, Any], keys: list[str], objective: str, top: int = 10) -> None:
    click.echo(f"{out['strategy']}: {len(out['results'])} parameter sets, best first by "
               f"{objective} (top {min(top, len(out['results']))})")
    for r in out["results"][:top]:
        m = r["metrics"]
        shown = {k: r["params"][k] for k in keys}
        click.echo(f"  {objective} {_num(m[objective])}  return {_num(m['total_return'])}  "
                   f"trades {m['n_trades']:>5}  {shown}")
    wf = out["walk_forward"]
    for i, f in enumerate(wf["folds"], 1):
        click.echo(f"walk-forward fold {i}: fit {f['train']['start']}..{f['train']['end']} -> "
                   f"{ {k: f['best_params'][k] for k in keys} }; {objective} in-sample "
                   f"{_num(f['in_sample'][objective])}, out-of-sample "
                   f"{_num(f['out_of_sample'][objective])} "
                   f"({f['test']['start']}..{f['test']['end']})")
    click.echo(f"in-sample minus out-of-sample {objective}: {_num(wf['gap'])}")


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"
