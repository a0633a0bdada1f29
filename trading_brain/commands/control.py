"""`trading-brain halt | resume | kill`: parse, call ``trading_brain.app.home.control``, print.

- ``halt [--slot S] [--reason R]``: a manual halt on every known slot or one (no new entries;
  exits and stops still pass).
- ``resume [--slot S] [--reason R]``: clears every halt *and* the kill switch; the current
  equity becomes the new peak and day start.
- ``kill [--slot S] [--attempts N] [--wait SECONDS]``: kill switch on, entries cancelled, one
  exit per open position, executor ticks until flat (see ``app.home.control.kill_all``). Not
  flat afterwards: exit code 1, the kill switch stays on — run it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised

if TYPE_CHECKING:
    from trading_brain.app.runtime import Runtime

slot_option = click.option("--slot", default=None, help="One slot (default: every known slot).")
reason_option = click.option("--reason", default="", help="Why (stored with the halt).")


def _runtime(ctx: click.Context) -> Runtime:
    from trading_brain.app.runtime import build_runtime

    home = home_of(ctx)
    require_initialised(home)
    return build_runtime(home)


def _echo(data: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(data)
        return
    for slot, r in data["slots"].items():
        click.echo(f"{slot}: {verb if r['changed'] else 'unchanged'}"
                   f" (halted={'yes' if r['halted'] else 'no'}, "
                   f"kill switch={'on' if r['kill_switch'] else 'off'})")


@click.command()
@slot_option
@reason_option
@json_option
@click.pass_context
def halt(ctx: click.Context, slot: str | None, reason: str, as_json: bool) -> None:
    """Halt new entries (exits and stops still pass) until `resume`."""
    from trading_brain.app.home import control

    rt = _runtime(ctx)
    why = reason or "halted by a human (trading-brain halt)"
    _echo({"slots": control.halt(rt, control.slots_of(rt.store, slot), why)}, as_json, "halted")


@click.command()
@slot_option
@reason_option
@json_option
@click.pass_context
def resume(ctx: click.Context, slot: str | None, reason: str, as_json: bool) -> None:
    """Clear every halt and the kill switch; current equity becomes the new peak."""
    from trading_brain.app.home import control

    rt = _runtime(ctx)
    why = reason or "resumed by a human (trading-brain resume)"
    _echo({"slots": control.resume(rt, control.slots_of(rt.store, slot), why)}, as_json,
          "resumed")


@click.command()
@slot_option
@reason_option
@click.option("--attempts", type=click.IntRange(1, 1000), default=40, show_default=True,
              help="Executor ticks to wait for the exits to fill.")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 600), default=15.0, show_default=True,
              help="Seconds between ticks.")
@json_option
@click.pass_context
def kill(ctx: click.Context, slot: str | None, reason: str, attempts: int, wait_s: float,
         as_json: bool) -> None:
    """Kill switch on, cancel entries, close every position (verified by fills), stay halted."""
    from trading_brain.app.home import control

    rt = _runtime(ctx)
    why = reason or "kill switch by a human (trading-brain kill)"
    data = control.kill_all(rt, control.slots_of(rt.store, slot), why, attempts, wait_s)
    if as_json:
        emit_json(data)
    else:
        for s, r in data["slots"].items():
            click.echo(f"{s}: kill switch on; cancelled {len(r['cancelled_orders'])} order(s), "
                       f"{r['cancelled_intents']} intent(s); exits {len(r['exit_intents'])}; "
                       f"closed {len(r['closed'])}; still open {r['open_positions']}")
        click.echo(f"{'flat' if data['flat'] else 'NOT FLAT'} after {data['ticks']} tick(s)")
    if not data["flat"]:
        ctx.exit(1)
