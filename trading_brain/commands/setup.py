"""`trading-brain init` and `trading-brain up`."""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option, progress_bar


@click.command()
@click.option("--market", type=click.Choice(["sim", "replay", "kraken"]), default=None,
              help="Where prices come from (default sim).")
@click.option("--symbols", default=None, help="Comma-separated pairs, e.g. BTC/USD,ETH/USD.")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True),
              help="Files or folders to replay (with --market replay).")
@click.option("--seed", type=int, default=None, help="Seed of the sim market.")
@click.option("--no-bootstrap", is_flag=True, help="Skip the history backfill.")
@click.option("--strategy", default="ema_cross@1", show_default=True,
              help="Version to deploy when none is active ('none' to deploy nothing).")
@click.option("--if-needed", is_flag=True, help="Do nothing when the home is already initialised.")
@click.option("--force", is_flag=True, help="Overwrite an existing trading_brain.toml.")
@json_option
@click.pass_context
def init(ctx: click.Context, market: str | None, symbols: str | None, data: tuple[str, ...],
         seed: int | None, no_bootstrap: bool, strategy: str, if_needed: bool, force: bool,
         as_json: bool) -> None:
    """Write a commented trading_brain.toml, create the warehouse, migrate, bootstrap history."""
    from trading_brain.app.home.init import initialise

    home = home_of(ctx)
    if if_needed and home.is_initialised():
        click.echo(f"{home.root} is already initialised", err=True)
        return
    with progress_bar("bootstrap", enabled=not as_json) as progress:
        result = initialise(home, market=market, symbols=symbols, data=list(data), seed=seed,
                            bootstrap=not no_bootstrap, force=force, progress=progress,
                            strategy=None if strategy.lower() == "none" else strategy)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"initialised {home.root}: market={result['market']}, "
                   f"{len(result['symbols'])} symbols, schema v{result['schema_version']}, "
                   f"{result['candles_stored']} candles bootstrapped, "
                   f"active strategy {result['active_strategy'] or 'none'}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also accept this Host/Origin name (the public name of a reverse proxy in "
                   "front; repeatable).")
@click.pass_context
def up(ctx: click.Context, host: str, port: int, allow_hosts: tuple[str, ...]) -> None:
    """Start the Dagster UI, daemon, schedules and sensors for this home (Ctrl-C stops).

    The UI is served through a guard that refuses foreign Host/Origin headers (DNS rebinding,
    cross-site requests); set TRADING_BRAIN_UI_TOKEN to also require a token. No process of the
    home outlives `up`, and a second `up` on the same home is refused while any of them lives.
    """
    from trading_brain.app.serve import run_up
    from trading_brain.commands.common import require_initialised

    home = home_of(ctx)
    require_initialised(home)
    ctx.exit(run_up(home, host, port, allow_hosts))
