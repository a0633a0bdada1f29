"""`trading-brain status`, `import-ohlcv` and `bootstrap` (parse, call ``trading_brain.app``,
print: ``app.home.status``, ``app.runtime.import_candle_files``, ``app.home.history``)."""

from __future__ import annotations

import sys

import click

from trading_brain.commands.common import (
    emit_json,
    home_of,
    json_option,
    progress_bar,
    require_initialised,
)


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Mode, last candle time and count per symbol and timeframe, and halts per slot."""
    from trading_brain.app.home.status import home_status
    from trading_brain.app.runtime import build_runtime
    from trading_brain.domain.numbers import money, percent, quantity

    home = home_of(ctx)
    require_initialised(home)
    data = home_status(build_runtime(home))
    s, candles = data["mode"], data["candles"]
    if as_json:
        emit_json(data)
        return
    click.echo(f"home {home.root}  market={s['market']}  execution={s['execution']}  "
               f"live_orders={'on' if s['allow_live_orders'] else 'off'}")
    click.echo(f"{'symbol':<12}{'tf':<5}{'candles':>9}  last candle (UTC)")
    for sym in data["symbols"]:
        for tf in ("5m", "1h", "1d"):
            c = candles.get(sym, {}).get(tf)
            last = c["last"].strftime("%Y-%m-%d %H:%M") if c else "-"
            click.echo(f"{sym:<12}{tf:<5}{(c['count'] if c else 0):>9}  {last}")
    for slot, h in data["halts"].items():
        why = [f"kill switch: {h['kill_switch']['reason']}"] if h["kill_switch"] else []
        why += [f"{k}: {v['reason']}" for k, v in h["halts"].items()]
        state = f"HALTED ({'; '.join(why)})" if h["halted"] else "trading"
        click.echo(f"slot {slot}: {state}  equity={money(h['equity'])}  "  # 2 decimals
                   f"peak={money(h['peak_equity'])}  drawdown={percent(h['drawdown'])}  "
                   f"open positions={h['open_positions']}")
        for p in data.get("positions", {}).get(slot, []):
            click.echo(f"  {p['symbol']:<12}{quantity(p['quantity'], p['lot_decimals']):>18}"
                       f"  at {money(p['entry_price'])}")


@click.command("import-ohlcv")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--symbol", default=None, help="Symbol of the files (default: from the file name).")
@click.option("--timeframe", type=click.Choice(["5m", "1h", "1d"]), default=None,
              help="Timeframe of the files (default: from the name or the timestamps); must "
                   "match the spacing of the timestamps.")
@click.option("--replace", is_flag=True, default=False,
              help="Overwrite stored candles whose values differ (old values are kept in "
                   "candle_revisions). Without it such an import is refused and changes nothing.")
@json_option
@click.pass_context
def import_ohlcv(ctx: click.Context, paths: tuple[str, ...], symbol: str | None,
                 timeframe: str | None, replace: bool, as_json: bool) -> None:
    """Load candle files into the warehouse; bad rows are quarantined, bad files change nothing.

    Candles already stored with other values are never overwritten silently: the import is
    refused (nothing written) unless --replace is given. The days now holding candles are
    reported to the home's Dagster instance as materialized partitions.
    """
    from trading_brain.app.home.history import import_reported
    from trading_brain.domain.instruments import parse_symbol

    sym = parse_symbol(symbol) if symbol else None
    # the bar only on a terminal: piped, a refusal stays the single line `error: …`
    bar = not as_json and sys.stderr.isatty()
    with progress_bar("import", enabled=bar) as progress:
        report, told = import_reported(home_of(ctx), list(paths), symbol=sym,
                                       timeframe=timeframe, progress=progress, replace=replace)
    if as_json:
        emit_json({**report.to_dict(), "dagster_catalog": told})
    else:
        click.echo(str(report))
        if told.get("candle_partitions_reported"):
            days = told["candle_partitions_reported"]
            click.echo(f"Dagster: day partitions now materialized: {days}")


@click.command()
@click.option("--days-5m", type=int, default=None)
@click.option("--days-1h", type=int, default=None)
@click.option("--days-1d", type=int, default=None)
@json_option
@click.pass_context
def bootstrap(ctx: click.Context, days_5m: int | None, days_1h: int | None, days_1d: int | None,
              as_json: bool) -> None:
    """Backfill candle history from the configured market; resumes where it stopped."""
    from trading_brain.app.home.history import backfill
    from trading_brain.app.runtime import build_runtime

    home = home_of(ctx)
    require_initialised(home)
    rt = build_runtime(home)
    with progress_bar("bootstrap", enabled=not as_json) as progress:
        data = backfill(rt, {"1d": days_1d, "1h": days_1h, "5m": days_5m}, progress)
    if as_json:
        emit_json(data)
    else:
        for tf, d in data.items():
            click.echo(f"{tf}: stored {d['stored']}, quarantined {d['quarantined']}, "
                       f"venue omitted {d['venue_omitted']}")
