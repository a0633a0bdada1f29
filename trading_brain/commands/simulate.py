"""`trading-brain simulate`: the whole trading loop offline on a simulated clock
(service: trading_brain/app/simulate/loop.py).

The home (``--home``) is used as is when initialised; a new directory is initialised without
bootstrap. ``--resume`` continues a killed run from its last durable checkpoint (the stored
plan wins over the options). Progress goes to stderr: a bar on a terminal, else one line
``step I/N TIME`` per completed step; ``--json`` prints one JSON object. ``--advisor``
(offline|anthropic, only with ``--evolve``) chooses who decides each night (default offline).
"""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option, progress_bar


@click.command()
@click.option("--days", type=float, default=None,
              help="Days of 5m bars to step through (sim default 30; replay: the whole data).")
@click.option("--market", type=click.Choice(["sim", "replay"]), default="sim", show_default=True,
              help="The simulated market or replayed candle files.")
@click.option("--data", multiple=True, help="Candle file or folder to replay (repeatable).")
@click.option("--seed", type=int, default=None, help="Seed of the sim market (default: the "
                                                     "home's sim.seed).")
@click.option("--start", default=None, help="First decision bar (ISO-8601 UTC; sim default: "
                                            "midnight UTC DAYS days ago).")
@click.option("--symbols", default=None, help="Comma-separated symbols (default: the home's).")
@click.option("--resume", is_flag=True, help="Continue the home's interrupted simulation.")
@click.option("--evolve", is_flag=True, help="Run the nightly evolution cycle at each simulated "
                                             "midnight (candidates, paper tests, promotions).")
@click.option("--advisor", type=click.Choice(["offline", "anthropic"]), default=None,
              help="With --evolve: who decides each night (default: offline).")
@json_option
@click.pass_context
def simulate(ctx: click.Context, days: float | None, market: str, data: tuple[str, ...],
             seed: int | None, start: str | None, symbols: str | None, resume: bool,
             evolve: bool, advisor: str | None, as_json: bool) -> None:
    """Drive scan -> risk -> executor -> ledger with a simulated clock, writing to the home's
    warehouse exactly as live trading would."""
    import sys
    from pathlib import Path

    from trading_brain.app.research.backtest import parse_time
    from trading_brain.app.simulate.loop import Plan
    from trading_brain.app.simulate.loop import simulate as run
    from trading_brain.errors import ConfigError, DataError

    if advisor is not None and not evolve:
        raise ConfigError("--advisor needs --evolve (it chooses who decides each night)")
    if days is not None and days <= 0:
        raise ConfigError("--days must be positive")
    if market == "replay" and not data and not resume:
        raise ConfigError("--market replay needs --data PATH (files or folders of candles)")
    for p in data:
        if not Path(p).exists():
            raise DataError(f"no such file or folder: {p}")
    t0 = parse_time(start, "--start")
    plan = Plan(market=market, days=days, seed=seed, start=t0.isoformat() if t0 else None,
                data=tuple(str(Path(p).resolve()) for p in data),
                symbols=tuple(s.strip() for s in (symbols or "").split(",") if s.strip()),
                evolve=evolve, advisor=advisor)
    err = sys.stderr
    with progress_bar("simulating", enabled=err.isatty()) as bar:
        def update(done: int, total: int, item: str) -> None:
            if err.isatty():
                bar(done, total, item)
            else:  # logs and pipes: one line per completed (checkpointed) step
                click.echo(f"step {done}/{total} {item}", err=True)

        out = run(home_of(ctx), plan, resume=resume, progress=update,
                  note=lambda m: click.echo(m, err=True))
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['days']} days, {len(out['symbols'])} symbols: {out['ticks']} ticks, "
               f"{out['trades']} trades, {out['orders']} orders, {out['fills']} fills")
    click.echo(f"final equity {out['final_equity']:.2f} (cash {out['cash']:.2f} + positions "
               f"{out['positions_value']:.2f}), fees {out['fees_paid']:.2f}, max drawdown "
               f"{out['max_drawdown']:.2%}, halts {out['halts']}, {out['elapsed_s']:.1f} s")
    if "evolution" in out:
        click.echo("evolution: " + ", ".join(f"{k} {v}" for k, v in out["evolution"].items()))
