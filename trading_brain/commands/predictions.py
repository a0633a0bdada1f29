"""`trading-brain predictions` and `trading-brain strategy-document`: the advisor's memory.

Service: the warehouse (``predictions``; ``strategy_documents``, migration 0009, written by the
weekly reflection ``app/evolve/reflection.py``). ``predictions [--json]`` lists open and graded
predictions, newest first (``--json``: a list of rows with ``prediction_id``, ``cycle_id``,
``subject``, ``claim``, ``metric``, ``comparator``, ``threshold``, ``deadline``, ``status``,
``graded_value``, ``grade_reason``). ``strategy-document [--version N] [--json]`` prints the
newest version (or version N); an unknown version is one ``error:`` line (exit 2). Advisor-written
text is printed with terminal control characters escaped (``safe_text``).
"""

from __future__ import annotations

import click

from trading_brain.adapters.sandbox.text import safe_text
from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised
from trading_brain.errors import ConfigError

FIELDS = ("prediction_id", "cycle_id", "subject", "claim", "metric", "comparator", "threshold",
          "deadline", "status", "graded_at", "graded_value", "grade_reason", "created_at")


@click.command()
@json_option
@click.pass_context
def predictions(ctx: click.Context, as_json: bool) -> None:
    """Open and graded predictions of the evolution advisor, newest first."""
    from trading_brain.adapters.duckdb import Store

    home = home_of(ctx)
    require_initialised(home)
    rows = Store.open(home.warehouse).evolution_rows("predictions", order="created_at DESC")
    items = [{k: r.get(k) for k in FIELDS} for r in rows]
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
    from trading_brain.adapters.duckdb import Store
    from trading_brain.adapters.duckdb.reflection_tables import document, documents

    home = home_of(ctx)
    require_initialised(home)
    store = Store.open(home.warehouse)
    row = document(store, version)
    if row is None:
        have = [r["version"] for r in documents(store)]
        raise ConfigError(f"no strategy document version {version}; versions: {have}"
                          if version is not None else
                          "no strategy document yet (the weekly reflection writes one)")
    if as_json:
        emit_json({k: row[k] for k in ("version", "week", "cycle_id", "author", "content",
                                       "created_at")})
        return
    click.echo(f"# version {row['version']} ({row['week']}, {row['author']}, "
               f"cycle {row['cycle_id']})")
    click.echo(safe_text(str(row["content"])))
