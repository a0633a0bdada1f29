"""`trading-brain strategies list|show|validate|register|deploy|rollback|promote|cancel|run|check`.

``list --json``: every shipped file and every registered version with its ``status``:
``unregistered`` (a file never registered), ``registered`` (shipped, never active), ``active``,
``candidate``, ``retired``, ``cancelled``, ``rolled_back`` or ``rejected``, and
``status_reason``. ``promote ID@V`` / ``cancel ID@V`` go through ``app.promotion`` (a promotion
needs a passed paper test and the risk shell's consent; a refusal is one line, exit 2).

Strategy code runs only in sandbox workers of a ``ports.StrategyWorkers`` service
(``register.open_workers``), closed when the command ends: ``validate`` and ``register`` in a
fresh worker per version (``validate``), the other commands in the version's pooled worker.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trading_brain.commands.common import emit_json, home_of, json_option, require_initialised

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb import Store
    from trading_brain.settings import Settings

RUN_CUTS = 5  # `strategies run`: a quick look-ahead check (a shift(-1) fails at any cut)


def _settings(ctx: click.Context) -> Settings:
    from trading_brain.settings import load_settings

    return load_settings(home_of(ctx))


def _warehouse(ctx: click.Context) -> Store:
    """The home's store; the home must be initialised (one-line error otherwise)."""
    from trading_brain.app.warehouse import require_store

    return require_store(home_of(ctx))


def _store(ctx: click.Context) -> Store | None:
    """The home's store, None outside an initialised home."""
    from trading_brain.app.warehouse import home_store

    return home_store(home_of(ctx))


@click.group()
def strategies() -> None:
    """Strategy versions: list, inspect, validate, register, deploy, roll back, promote,
    cancel, run, check."""


@strategies.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Strategy files in strategies/ and their registry status."""
    from trading_brain.app.research.versions import list_versions

    rows = list_versions(_store(ctx))
    if as_json:
        emit_json(rows)
        return
    refs = [f"{r['strategy']}@{r['version']}" for r in rows]
    ref_w = max([len("strategy"), *map(len, refs)])
    status_w = max([len("status"), *(len(r["status"]) for r in rows)])
    click.echo(f"{'strategy':<{ref_w}}  {'status':<{status_w}}  path")
    for ref, r in zip(refs, rows, strict=True):
        click.echo(f"{ref:<{ref_w}}  {r['status']:<{status_w}}  {r['path']}")


@strategies.command()
@click.argument("ref")
@click.option("--source", "show_source", is_flag=True, help="Print the module source.")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, show_source: bool, as_json: bool) -> None:
    """One version: warm-up, parameters and their space, hash, status, validation."""
    from trading_brain.app.research.versions import show_version

    out = show_version(_settings(ctx), _store(ctx), ref, show_source)
    sid, ver, source = out["strategy_id"], out["version"], out.get("source")
    if as_json:
        emit_json(out)
        return
    click.echo(f"{sid}@{ver}  status={out['status']}  warmup={out['warmup_bars']} bars  "
               f"sha256={str(out['sha256'])[:16]}…")
    click.echo(f"params: {json.dumps(out['params_default'])}")
    if source is not None:
        click.echo(source)


@strategies.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_context
def validate(ctx: click.Context, file: str, as_json: bool) -> None:
    """Static gate, sandbox run, output contract, determinism, look-ahead and warm-up checks."""
    from trading_brain.app.research.register import open_workers, sample_bars
    from trading_brain.engine.registry import validate_version

    with closing(open_workers(_settings(ctx))) as workers:
        src = workers.validate(Path(file).read_text(encoding="utf-8"))
        result = validate_version(src, sample_bars())  # within sandbox.validation_budget_s
        result = {"strategy": src.strategy_id, "version": src.version, "valid": True, **result}
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['strategy']}@{result['version']}: valid ({result['smoke_entries']} "
                   f"entries on {result['smoke_rows']} sample bars; look-ahead and warm-up passed)")


@strategies.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", default="released", show_default=True)
@json_option
@click.pass_context
def register(ctx: click.Context, files: tuple[str, ...], reason: str, as_json: bool) -> None:
    """Validate and record versions (default: every file in strategies/)."""
    from trading_brain.app.research.register import home_catalog, register_files

    with home_catalog(home_of(ctx), "by trading-brain strategies register") as catalog:
        rows = register_files(_warehouse(ctx), _settings(ctx), [Path(f) for f in files] or None,
                              reason, catalog=catalog)
    if as_json:
        emit_json(rows)
    else:
        for r in rows:
            done = "registered" if r["created"] else "unchanged"
            click.echo(f"{r['strategy']}@{r['version']}: {done}")


@strategies.command()
@click.argument("ref")
@click.option("--reason", default="manual deploy", show_default=True)
@click.pass_context
def deploy(ctx: click.Context, ref: str, reason: str) -> None:
    """Make ID@VERSION the active strategy (registering its file first if needed)."""
    from trading_brain.app.research.register import register_files, strategy_source
    from trading_brain.engine import registry

    store = _warehouse(ctx)
    sid, ver, _source, path = strategy_source(ref, store)
    if store.strategy_version(sid, ver) is None and path:
        from trading_brain.app.research.register import home_catalog

        with home_catalog(home_of(ctx), "by trading-brain strategies deploy") as catalog:
            register_files(store, _settings(ctx), [Path(path)], "released", catalog=catalog)
    registry.deploy(store, sid, ver, reason)
    click.echo(f"deployed {sid}@{ver}")


@strategies.command()
@click.option("--reason", default="manual rollback", show_default=True)
@click.pass_context
def rollback(ctx: click.Context, reason: str) -> None:
    """Return to the version deployed before the current one."""
    from trading_brain.engine import registry

    sid, ver = registry.rollback(_warehouse(ctx), reason)
    click.echo(f"rolled back to {sid}@{ver}")


@strategies.command()
@click.argument("ref")
@click.option("--reason", default="", help="Why (default: the paper test's verdict).")
@click.pass_context
def promote(ctx: click.Context, ref: str, reason: str) -> None:
    """Promote candidate ID@V (its paper test passed; the risk shell agrees)."""
    from trading_brain.app.promotion import promote as run
    from trading_brain.app.runtime import build_runtime

    require_initialised(home_of(ctx))
    rt = build_runtime(home_of(ctx))
    try:
        p = run(rt, ref, rt.clock.now(), reason)
    finally:
        rt.workers.close()
    click.echo(f"promoted {p.ref} (retired {p.incumbent}; slot {p.slot} freed)")


@strategies.command()
@click.argument("ref")
@click.option("--reason", default="manual cancel", show_default=True)
@click.pass_context
def cancel(ctx: click.Context, ref: str, reason: str) -> None:
    """Cancel candidate ID@V and free its paper-test slot."""
    from trading_brain.app.promotion import cancel as run
    from trading_brain.app.runtime import build_runtime

    require_initialised(home_of(ctx))
    rt = build_runtime(home_of(ctx))
    try:
        run(rt, ref, rt.clock.now(), reason)
    finally:
        rt.workers.close()
    click.echo(f"cancelled {ref}")


@strategies.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", required=True, multiple=True, type=click.Path(exists=True))
@click.option("--symbol", default=None)
@click.option("--timeframe", type=click.Choice(["5m", "1h", "1d"]), default=None)
@click.option("--params", default=None, help="JSON object of parameter overrides.")
@click.option("--lookahead-cuts", type=click.IntRange(min=0), default=RUN_CUTS, show_default=True,
              help="Truncated histories of a quick look-ahead check per symbol (0: skip it).")
@json_option
@click.pass_context
def run(ctx: click.Context, file: str, data: tuple[str, ...], symbol: str | None,
        timeframe: str | None, params: str | None, lookahead_cuts: int, as_json: bool) -> None:
    """Run a module's generate in the sandbox over a candle file; print the signals.

    A quick look-ahead check runs too; its verdict is in the output, and a failure or a skipped
    check is a warning (the signals are printed all the same)."""
    from trading_brain.app.research.backtest import json_object
    from trading_brain.app.research.register import load_bars
    from trading_brain.app.research.versions import run_file

    bars_by_symbol = load_bars(list(data), symbol, timeframe)
    overrides = json_object(params, "--params") or None
    out = run_file(_settings(ctx), file, bars_by_symbol, overrides, lookahead_cuts)
    if as_json:
        emit_json(out)
        return
    for sym, o in out.items():
        look = f"; {o['lookahead']['summary']}" if o["lookahead"] else ""
        click.echo(f"{sym}: {o['bars']} bars, {o['entries']} entries, {o['exits']} exits{look}")
        for w in o["warnings"]:
            click.echo(f"warning: {sym}: {w}", err=True)


@strategies.command()
@click.argument("ref")
@click.option("--data", "data", required=True, multiple=True, type=click.Path(exists=True))
@click.option("--symbol", default=None)
@click.option("--timeframe", type=click.Choice(["5m", "1h", "1d"]), default=None)
@click.option("--cut-points", type=int, default=30, show_default=True)
@json_option
@click.pass_context
def check(ctx: click.Context, ref: str, data: tuple[str, ...], symbol: str | None,
          timeframe: str | None, cut_points: int, as_json: bool) -> None:
    """Look-ahead and warm-up checks of ID@V (or a FILE) on candle data."""
    from trading_brain.app.research.versions import check_version

    passed, results = check_version(_settings(ctx), home_of(ctx), ref, data, symbol, timeframe,
                                    cut_points)
    if as_json:
        emit_json({"strategy": ref, "passed": passed, "symbols": results})
    else:
        for sym, r in results.items():
            click.echo(f"{sym}: {r['lookahead']['summary']}; {r['warmup']['summary']}")
    if not passed:
        ctx.exit(1)
