"""`trading-brain backtest` and `trading-brain optimize`: parse, call ``app.research.runs``, print.

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
from typing import TYPE_CHECKING, Any

import click

from trading_brain.commands.common import emit_json, home_of, json_option, progress_bar
from trading_brain.domain.fees import DEFAULT_TAKER_FEE

if TYPE_CHECKING:
    from trading_brain.app.research.data import BarsRequest

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
    from trading_brain.app.research.runs import backtest_version

    costs = bt.Costs(opts["cash"], opts["fee"], opts["slippage"])
    if engine not in bt.ENGINES:
        raise bt.ConfigError(f"unknown engine {engine!r}; use one of {', '.join(bt.ENGINES)}")
    overrides = bt.json_object(params, "--params")
    run = backtest_version(home_of(ctx), ref, _request(opts), overrides, engine, costs)
    if as_json:
        emit_json(run.out)
    else:
        _print_backtest(run.out, run.bars)


def _request(opts: dict[str, Any]) -> BarsRequest:
    from trading_brain.app.research.data import BarsRequest

    return BarsRequest.parse(opts["data"], opts["symbol"], opts["symbols"], opts["start"],
                             opts["end"], opts["timeframe"])


def _print_backtest(out: dict[str, Any], bars: dict[str, Any]) -> None:
    m = out["metrics"]
    n = sum(b.height for b in bars.values())
    click.echo(f"{out['strategy']} ({out['engine']} engine) on {', '.join(sorted(bars))}: "
               f"{n} bars, params {out['params']}")
    click.echo(f"final equity {m['final_equity']:.2f}  return {_shown('total_return', m)}  "
               f"{LABELS['sharpe']} {_shown('sharpe', m)}  "
               f"{LABELS['sortino']} {_shown('sortino', m)}  "
               f"max drawdown {_shown('max_drawdown', m)}")
    pf = "inf" if m["profit_factor"] is None else f"{m['profit_factor']:.2f}"
    opened = sum(t["exit_time"] is None for t in out["trades"])
    click.echo(f"{m['n_trades']} closed trades (+{opened} open)  win rate {m['win_rate']:.1%}  "
               f"fees {m['fees_paid']:.2f}  exposure {m['exposure']:.1%}  profit factor {pf}")
    if out["backtest_id"]:
        click.echo(f"stored as backtest {out['backtest_id'][:16]}")


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
    from trading_brain.app.research.runs import optimize_inputs, optimize_version

    costs = bt.Costs(opts["cash"], opts["fee"], opts["slippage"])
    grid = optimize_inputs(grid_text, objective, train, folds)  # before any work
    req = _request(opts)
    shown = not as_json and sys.stderr.isatty()
    with progress_bar("generate", shown) as update:
        run = optimize_version(home_of(ctx), ref, req, grid, objective, train, folds, costs,
                               progress=update if shown else None)
    if run.skipped:
        click.echo(f"note: skipped {len(run.skipped)} invalid combination(s), e.g. "
                   f"{run.skipped[0]}", err=True)
    if as_json:
        emit_json(run.out)
    else:
        _print_optimize(run.out, list(grid), objective)


def _print_optimize(out: dict[str, Any], keys: list[str], objective: str, top: int = 10) -> None:
    label = LABELS.get(objective, objective)
    click.echo(f"{out['strategy']}: {len(out['results'])} parameter sets, best first by "
               f"{label} (top {min(top, len(out['results']))})")
    for r in out["results"][:top]:
        m = r["metrics"]
        shown = {k: r["params"][k] for k in keys}
        ranked = "" if objective == "total_return" else f"{label} {_shown(objective, m)}  "
        click.echo(f"  {ranked}return {_shown('total_return', m)}  "
                   f"trades {m['n_trades']:>5}  {shown}")
    wf = out["walk_forward"]
    for i, f in enumerate(wf["folds"], 1):
        click.echo(f"walk-forward fold {i}: fit {f['train']['start']}..{f['train']['end']} -> "
                   f"{ {k: f['best_params'][k] for k in keys} }; {label} in-sample "
                   f"{_shown(objective, f['in_sample'])}, out-of-sample "
                   f"{_shown(objective, f['out_of_sample'])} "
                   f"({f['test']['start']}..{f['test']['end']})")
    click.echo(f"in-sample minus out-of-sample {label}: "
               f"{_shown(objective, {objective: wf['gap']})}")


LABELS = {"sharpe": "Sharpe (daily, √365)", "sortino": "Sortino (daily, √365)",
          "total_return": "return", "max_drawdown": "max drawdown", "win_rate": "win rate",
          "final_equity": "final equity", "profit_factor": "profit factor"}
PERCENT = {"total_return": "+.2%", "max_drawdown": ".2%", "win_rate": ".1%", "exposure": ".1%"}


def _shown(metric: str, metrics: dict[str, Any]) -> str:
    """A metric as text: fractions as percents (returns signed), ratios with 2 decimals."""
    v = metrics[metric]
    if v is None:
        return "n/a"
    if metric in PERCENT:
        return format(v, PERCENT[metric])
    return f"{v:.2f}" if metric in ("sharpe", "sortino", "final_equity", "profit_factor") \
        else f"{v:.4g}"
