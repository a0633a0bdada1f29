"""`trading-brain api`: the read-only data API on 127.0.0.1 (FastAPI + uvicorn) until Ctrl-C.

Needs TRADING_BRAIN_API_TOKEN in the environment (clients send ``Authorization: Bearer
<token>``) and an initialised home; see ``app.api`` for the contract and README for endpoints.
"""

from __future__ import annotations

import click

from trading_brain.commands.common import home_of


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="TCP port on 127.0.0.1.")
@click.option("--lock-budget", type=click.FloatRange(0.0, 30.0), default=2.0, show_default=True,
              help="Seconds a read waits for the writer's lock before answering 503.")
@click.option("--cache-ttl", type=click.FloatRange(0.0, 60.0), default=1.0, show_default=True,
              help="Seconds identical reads share one warehouse read (0: off).")
@click.option("--poll", type=click.FloatRange(0.05, 60.0), default=1.0, show_default=True,
              help="Event stream: seconds between looks for new rows.")
@click.option("--heartbeat", type=click.FloatRange(0.1, 300.0), default=15.0,
              show_default=True, help="Event stream: seconds of silence before a heartbeat.")
@click.option("--access-log", is_flag=True, default=False, help="Log every request.")
@click.pass_context
def api(ctx: click.Context, port: int, lock_budget: float, cache_ttl: float, poll: float,
        heartbeat: float, access_log: bool) -> None:
    """Serve the read-only data API (status, positions, trades, …, /events, /metrics)."""
    from trading_brain.app.api import ApiOptions, serve

    opts = ApiOptions(port=port, lock_budget_s=lock_budget, cache_ttl_s=cache_ttl, poll_s=poll,
                      heartbeat_s=heartbeat, access_log=access_log)
    serve(home_of(ctx), opts, announce=lambda line: click.echo(line, err=True))
