"""`trading-brain predictions` and `trading-brain strategy-document`: the advisor's memory.

Service: ``app.records`` over the warehouse (``predictions``; ``strategy_documents``, migration
0009, written by the weekly reflection ``app/evolve/reflection.py``). ``predictions [--json]``
lists open and graded predictions, newest first (``--json``: a list of rows with
``prediction_id``, ``cycle_id``, ``subject``, ``claim``, ``metric``, ``comparator``,
``threshold``, ``deadline``, ``status``, ``graded_value``, ``grade_reason``).
``strategy-document [--version N] [--json]`` prints the newest version (or version N); an
unknown version is one ``error:`` line (exit 2). Advisor-written text is printed with terminal
control characters escaped (``safe_text``).
"""

from __future__ import annotations

import click

from trading_brain.adapters.sandbox.text import safe_text
from trading_brain.commands.common import emit_json, home_of, json_option


@click.command()
@json_option
@click.pass_context
def predictions(ctx: click.Context, as_json: bool) -> None:
    """Open and graded predictions of the evolution advisor, newest first."""
    from trading_brain.app.records import prediction_rows

    items = prediction_rows(home_of(ctx))
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("no predictions yet")
    for p in items:
        value = "" if p["graded_value"] is None else f" (value {p['graded_value']:.4g})"
        click.echo(f"{p['status']:<12} {p['subject']} {p['metric']} {p['comparator']} "
                   f"{p['threshold']:g} by {p['deadline']:%Y-%m-%d}{value}: "
                   f"{safe_text(str(p['claim']))}")


@click.command("strategy-document")
@click.option("--version", "version", type=int, default=None,
              help="Which version (default: the newest).")
@json_option
@click.pass_context
def strategy_document(ctx: click.Context, version: int | None, as_json: bool) -> None:
    """The strategy document the weekly reflection writes (versioned; old ones kept)."""
    from trading_brain.app.records import strategy_document as read

    row = read(home_of(ctx), version)
    if as_json:
        emit_json(row)
        return
    click.echo(f"# version {row['version']} ({row['week']}, {row['author']}, "
               f"cycle {row['cycle_id']})")
    click.echo(safe_text(str(row["content"])))
