"""`trading-brain candidates [--json]`: the shadow slots and each candidate's paper test.

Service: ``app.promotion_reviews.candidates``. ``--json`` prints ``{"max_candidates", "slots":
[{"slot", "candidate", "test_id"}], "candidates": [{"candidate", "status", "paper_test":
{"slot", "status", "tier", "started_at", "min_until", "days", "trades", "min_trades",
"candidate_return", "active_return", "reason"} | null}]}``.
"""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised


@click.command()
@json_option
@click.pass_context
def candidates(ctx: click.Context, as_json: bool) -> None:
    """Candidate slots and paper-test progress."""
    from trading_brain.app.promotion_reviews import candidates as view
    from trading_brain.app.runtime import build_runtime

    home = home_of(ctx)
    require_initialised(home)
    rt = build_runtime(home)
    try:
        out = view(rt, rt.clock.now())
    finally:
        rt.workers.close()
    if as_json:
        emit_json(out)
        return
    for s in out["slots"]:
        click.echo(f"{s['slot']:<8} {s['candidate'] or 'free'}")
    for c in out["candidates"]:
        t = c["paper_test"]
        if t is None:
            click.echo(f"{c['candidate']:<22} {c['status']:<10} waiting for a slot")
            continue
        trades = t["trades"] if t["trades"] is not None else "-"
        click.echo(f"{c['candidate']:<22} {c['status']:<10} {t['slot']} {t['status']}: "
                   f"{t['days']:.2f} days (min until {t['min_until']}), {trades}/"
                   f"{t['min_trades']} trades" + (f"; {t['reason']}" if t["reason"] else ""))
