"""`trading-brain telegram`: run the Telegram bot (long polling) until Ctrl-C.

Needs TELEGRAM_BOT_TOKEN (environment or ``<home>/.env``) and an initialised home; commands
are answered only for ``telegram.allowed_user_ids`` (empty: nobody, a warning says so).
``--once`` polls one time (without waiting) and exits: a smoke test of the token and the URL.
"""

from __future__ import annotations

import signal
import threading

import click

from trading_brain.commands.common import home_of, require_initialised
from trading_brain.errors import ConfigError


@click.command()
@click.option("--once", is_flag=True, default=False, help="Poll once without waiting, then exit.")
@click.pass_context
def telegram(ctx: click.Context, once: bool) -> None:
    """Answer Telegram commands (/status, /positions, /halt, /kill…) by long polling."""
    from trading_brain.adapters.telegram.client import TelegramClient
    from trading_brain.app.runtime import build_runtime
    from trading_brain.app.telegram import build_bot
    from trading_brain.settings import Secrets

    home = home_of(ctx)
    require_initialised(home)
    token = Secrets.load(home.root).telegram_bot_token
    if token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set (environment or .env in the home)")
    rt = build_runtime(home)
    tg = rt.settings.telegram
    if not tg.allowed_user_ids:
        click.echo("warning: telegram.allowed_user_ids is empty: nobody may send commands",
                   err=True)
    client = TelegramClient(token.get_secret_value(), tg.api_url, timeout_s=tg.timeout_s)
    bot = build_bot(rt, client)
    if once:
        n = bot.poll_once(timeout_s=0)
        bot.wait_jobs()
        click.echo(f"telegram: {n} update(s) handled")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"telegram: polling {tg.api_url} (Ctrl-C stops)", err=True)
    try:
        bot.run(stop)
    except KeyboardInterrupt:
        stop.set()
