"""`trading-brain backup [--json]` and `trading-brain restore SNAPSHOT`: parse, call
``trading_brain.app.backup``, print.

- ``backup``: the same snapshot the nightly ``warehouse_backup`` asset takes, now; prints its
  path and sha256 (``--json``: path, sha256, bytes, schema_version, ts, removed). A failure (full
  disk) is one ``error:`` line, exit 2, an alert in ``notifications``; earlier snapshots stay.
- ``restore SNAPSHOT [--allow-other-home] [--json]``: refused while ``up`` runs for the home, for
  a checksum mismatch, a file that is not a warehouse of this home, a newer schema or a broken
  ledger invariant — each one ``error:`` line, exit 2, nothing changed. On success the replaced
  warehouse is kept beside it (``warehouse.duckdb.replaced-<UTC>``).
"""

from __future__ import annotations

import click

from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised


@click.command()
@json_option
@click.pass_context
def backup(ctx: click.Context, as_json: bool) -> None:
    """Snapshot the warehouse now (consistent copy, sha256, retention)."""
    from trading_brain.app.backup import backup_now
    from trading_brain.app.runtime import build_runtime

    home = home_of(ctx)
    require_initialised(home)
    snap = backup_now(build_runtime(home))
    if as_json:
        emit_json(snap.as_dict())
    else:
        click.echo(f"{snap.path}\nsha256 {snap.sha256}")


@click.command()
@click.argument("snapshot", type=click.Path(dir_okay=False))
@click.option("--allow-other-home", is_flag=True,
              help="Accept a snapshot whose warehouse id differs from this home's.")
@json_option
@click.pass_context
def restore(ctx: click.Context, snapshot: str, allow_other_home: bool, as_json: bool) -> None:
    """Replace the warehouse by a verified snapshot (refused while `up` runs)."""
    from trading_brain.app.backup import restore as do_restore

    result = do_restore(home_of(ctx), snapshot, allow_other_home=allow_other_home)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"restored {result['restored']} (sha256 {result['sha256']})")
        if result["kept"]:
            click.echo(f"the replaced warehouse is kept as {result['kept']}")
