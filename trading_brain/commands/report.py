"""`trading-brain report [--date D] [--week] [--open] [--json]`: write the report of a day (or of
the 7 days ending with it) to ``var/reports/`` and print its paths.

Service: ``app.reports.service.report``. Without ``--date``, the newest day holding trading data.
A day without data is one line ``error: no trading data for D`` (exit 2), nothing written.
Text mode prints the Markdown and HTML paths, then the charts; ``--json`` prints ``{"kind",
"label", "start", "end", "markdown", "html", "charts", "figures"}``. ``--open`` opens the HTML
page in a browser (skipped silently when none is available).
"""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised


@click.command()
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD",
              help="The (UTC) day to report (default: the newest day with data).")
@click.option("--week", is_flag=True, help="The 7 days ending with --date instead of one day.")
@click.option("--open", "open_page", is_flag=True, help="Open the HTML report in a browser.")
@json_option
@click.pass_context
def report(ctx: click.Context, day: str | None, week: bool, open_page: bool,
           as_json: bool) -> None:
    """Write a report with charts (Markdown + self-contained HTML) and print its paths."""
    from datetime import UTC, datetime

    from trading_brain.adapters.duckdb import Store
    from trading_brain.app.reports.period import parse_date
    from trading_brain.app.reports.service import report as build

    home = home_of(ctx)
    require_initialised(home)
    d = parse_date(day) if day is not None else None
    rep = build(home, Store.open(home.warehouse), "weekly" if week else "daily", d,
                datetime.now(UTC))
    if open_page:
        _open(rep.html_path.as_uri())
    if as_json:
        emit_json(rep.as_dict())
        return
    click.echo(str(rep.markdown_path))
    click.echo(str(rep.html_path))
    for p in rep.chart_paths:
        click.echo(str(p))


def _open(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url)
    except webbrowser.Error:  # no usable browser: the paths are printed anyway
        pass
