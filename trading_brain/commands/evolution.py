"""`trading-brain evolution scorecard [--json]`: every promotion with its review.

Service: ``app.records.scorecard`` (``app.promotion_reviews``: ``scorecard_rows``,
``adds_value``). A promotion is graded
``review_days`` after it: the promoted version and the incumbent it replaced replayed with the
exact engine over the bars since the promotion. ``--json`` prints ``{"adds_value": {"passed",
"description", "metrics"}, "promotions": [{"promotion_id", "incumbent", "promoted_at",
"verdict", "edge", "promoted_return", "incumbent_return", "bars", "bars_start", "bars_end",
"reviewed_at"}]}``.
"""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option


@click.group()
def evolution() -> None:
    """The evolution loop's record: does the brain add value?"""


@evolution.command()
@json_option
@click.pass_context
def scorecard(ctx: click.Context, as_json: bool) -> None:
    """Every promotion with its review (edge over the incumbent it replaced)."""
    from trading_brain.app.records import scorecard as read

    rows, check = read(home_of(ctx))
    if as_json:
        emit_json({"adds_value": {"passed": check.passed, "description": check.description,
                                  "metrics": check.metrics}, "promotions": rows})
        return
    click.echo(f"evolution adds value: {'yes' if check.passed else 'NO'} "
               f"({check.description})")
    if not rows:
        click.echo("no promotion yet")
    for r in rows:
        edge = f"{r['edge']:+.4%}" if r["edge"] is not None else "-"
        click.echo(f"{r['promotion_id']:<22} over {r['incumbent']:<22} {r['promoted_at']}  "
                   f"{r['verdict']:<8} edge {edge}")
