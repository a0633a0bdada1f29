"""`trading-brain evolve` (run tonight's evolution cycle now) and `trading-brain thoughts`.

Services: trading_brain/app/evolve/cycle.py (``evolve``), trading_brain/app/records.py
(``thoughts``). ``evolve --json`` prints ``{"cycle_id", "status", "decision": {"action",
"tier", "reasoning"}, "candidate", "gates", "outcome", "error", "tokens", "cost_usd"}``
(tokens: input + output + cache write + cache read of every advisor call); a cycle already
finished tonight prints its stored result. ``--advisor`` unset: ``[advisor] kind``, else
anthropic when ANTHROPIC_API_KEY is set, else offline. ``thoughts`` lists recent cycles, or
with CYCLE the conversation of that cycle role by role (step, seq, role, content; ``--json`` a
list of those rows).
Advisor-written text is printed with terminal control characters escaped (``safe_text``).
"""

from __future__ import annotations

import json

import click

from trading_brain.adapters.sandbox.text import safe_text
from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised


@click.command()
@click.option("--advisor", type=click.Choice(["offline", "anthropic"]), default=None,
              help="Who decides (default: [advisor] kind, else anthropic when "
                   "ANTHROPIC_API_KEY is set, else offline).")
@json_option
@click.pass_context
def evolve(ctx: click.Context, advisor: str | None, as_json: bool) -> None:
    """Run the nightly evolution cycle now: context, decision, candidate and its gates."""
    from trading_brain.app.evolve.cycle import run_cycle
    from trading_brain.app.runtime import build_runtime

    home = home_of(ctx)
    require_initialised(home)
    rt = build_runtime(home)
    try:
        result = run_cycle(rt, advisor_name=advisor)
    finally:
        rt.workers.close()
    out = result.as_json()
    if as_json:
        emit_json(out)
        return
    d = out["decision"]
    click.echo(f"{out['cycle_id']}: {out['status']}, {d['action'] or '-'}"
               + (f" (tier {d['tier']})" if d["tier"] else ""))
    if d["reasoning"]:
        click.echo(safe_text(d["reasoning"]))
    if out["error"]:
        click.echo(f"refused: {safe_text(out['error'])}")
    for g in out["gates"]:
        click.echo(f"  {g['gate']:<13} {g['status']:<12} {safe_text(str(g['reason']))}")
    if out["candidate"]:
        click.echo(f"candidate {out['candidate']}: {out['outcome']}")
    if out["tokens"]:
        click.echo(f"advisor: {out['tokens']} tokens, ${out['cost_usd']:.4f}")


@click.command()
@click.argument("cycle", required=False)
@json_option
@click.pass_context
def thoughts(ctx: click.Context, cycle: str | None, as_json: bool) -> None:
    """Recent evolution cycles, or every recorded thought of CYCLE."""
    from trading_brain.app.records import cycle_thoughts, recent_cycles

    home = home_of(ctx)
    if cycle is None:
        rows = recent_cycles(home)
        if as_json:
            emit_json(rows)
            return
        for r in rows:
            click.echo(f"{r['cycle_id']}  {r['status']:<9} {r['action'] or '-':<18} "
                       f"{safe_text(r['error'] or '')}")
        return
    items = cycle_thoughts(home, cycle)
    if as_json:
        emit_json(items)
        return
    for t in items:
        click.echo(f"--- {t['step']}/{t['seq']} ({t['role']})")
        click.echo(safe_text(_pretty(t["content"])))


def _pretty(content: str) -> str:
    try:
        return json.dumps(json.loads(content), indent=2, ensure_ascii=False)
    except ValueError:
        return content
