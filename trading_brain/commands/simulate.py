"""`trading-brain simulate`: the whole trading loop offline on a simulated clock
(service: trading_brain/app/simulate/loop.py).

The home (``--home``) is used as is when initialised; a new directory is initialised without
bootstrap. ``--resume`` continues a killed run from its last durable checkpoint (the stored
plan wins over the options). Progress goes to stderr: a bar on a terminal, else one line
``step I/N TIME`` per completed step; ``--json`` prints one JSON object. ``--advisor``
(offline|anthropic, only with ``--evolve``) chooses who decides each night (default offline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from trading_brain.commands.common import emit_json, home_of, json_option, progress_bar

if TYPE_CHECKING:
    from trading_brain.app.reports.simulation import SimulationExtras


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
@click.option("--progress-lines", is_flag=True,
              help="Print one `step I/N TIME` line per committed step on stderr (default: a "
                   "bar on a terminal, nothing otherwise).")
@json_option
@click.pass_context
def simulate(ctx: click.Context, days: float | None, market: str, data: tuple[str, ...],
             seed: int | None, start: str | None, symbols: str | None, resume: bool,
             evolve: bool, advisor: str | None, progress_lines: bool, as_json: bool) -> None:
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
    bar_on = sys.stderr.isatty() and not progress_lines
    with progress_bar("simulating", enabled=bar_on) as bar:
        def update(done: int, total: int, item: str) -> None:
            if progress_lines:  # one line per completed (checkpointed) step
                click.echo(f"step {done}/{total} {item}", err=True)
            else:
                bar(done, total, item)  # silent when stderr is not a terminal

        out = run(home_of(ctx), plan, resume=resume, progress=update,
                  note=lambda m: click.echo(m, err=True))
    from datetime import UTC, datetime

    from trading_brain.app.reports.simulation import after_simulation

    extra = after_simulation(home_of(ctx), float(out["final_equity"]), datetime.now(UTC))
    if extra.note:
        click.echo(f"report not written: {extra.note}", err=True)
    if as_json:
        report = str(extra.report.html_path) if extra.report else None
        emit_json(out | {"start_cash": extra.start_cash, "return_pct": extra.return_pct,
                         "report": report})
        return
    _summary(out, extra)


def _summary(out: dict[str, Any], extra: SimulationExtras) -> None:
    ret = f"{extra.return_pct:+.2f}%" if extra.return_pct is not None else "n/a"
    cash = f"{extra.start_cash:,.2f}" if extra.start_cash is not None else "n/a"
    rows = [
        ("simulated", f"{out['days']} days, {len(out['symbols'])} symbols "
                      f"({', '.join(out['symbols'])})"),
        ("starting cash", cash),
        ("final equity", f"{out['final_equity']:,.2f} (cash {out['cash']:,.2f} + positions "
                         f"{out['positions_value']:,.2f})"),
        ("return", ret),
        ("trades", f"{out['trades']} ({out['orders']} orders, {out['fills']} fills)"),
        ("fees", f"{out['fees_paid']:,.2f}"),
        ("max drawdown", f"{out['max_drawdown']:.2%}"),
        ("halts", str(out["halts"])),
        ("steps / ticks", f"{extra.steps} / {out['ticks']}: a step is one 5-minute bar; a tick "
                          "is one executor pass (up to 3 per step, idle ones skipped)"),
        ("elapsed", f"{out['elapsed_s']:.1f} s"),
    ]
    if "evolution" in out:
        rows.append(("evolution", ", ".join(f"{k} {v}" for k, v in out["evolution"].items())))
    rows.append(("report", str(extra.report.html_path) if extra.report else "none"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")
