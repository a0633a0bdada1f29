"""The ``trading-brain`` command line.

Subcommands are loaded lazily (``--help`` imports neither polars nor dagster). Any
``TradingBrainError`` is printed as one line ``error: …`` on stderr with exit code 2 and no
traceback; ``--json`` commands print exactly one JSON document on stdout.
"""

from __future__ import annotations

import importlib
import sys

import click

from trading_brain.errors import TradingBrainError

# name -> "module:attribute" of a click.Command; later issues add theirs here.
COMMANDS = {
    "init": "trading_brain.commands.setup:init",
    "up": "trading_brain.commands.setup:up",
    "status": "trading_brain.commands.market:status",
    "import-ohlcv": "trading_brain.commands.market:import_ohlcv",
    "bootstrap": "trading_brain.commands.market:bootstrap",
    "strategies": "trading_brain.commands.strategies:strategies",
    "backtest": "trading_brain.commands.backtest:backtest",
    "optimize": "trading_brain.commands.backtest:optimize",
    "simulate": "trading_brain.commands.simulate:simulate",
    "halt": "trading_brain.commands.control:halt",
    "resume": "trading_brain.commands.control:resume",
    "kill": "trading_brain.commands.control:kill",
    "backup": "trading_brain.commands.backup:backup",
    "restore": "trading_brain.commands.backup:restore",
    "evolve": "trading_brain.commands.evolve:evolve",
    "thoughts": "trading_brain.commands.evolve:thoughts",
    "predictions": "trading_brain.commands.predictions:predictions",
    "strategy-document": "trading_brain.commands.predictions:strategy_document",
    "candidates": "trading_brain.commands.candidates:candidates",
    "evolution": "trading_brain.commands.evolution:evolution",
    "telegram": "trading_brain.commands.telegram:telegram",
    "api": "trading_brain.commands.api:api",
    "report": "trading_brain.commands.report:report",
}
HELP = {
    "init": "Create a home: config, warehouse, migrations, history.",
    "up": "Run the Dagster webserver and daemon for this home.",
    "status": "Mode and candle coverage per symbol and timeframe.",
    "import-ohlcv": "Load OHLCV files (CSV, CSV.gz, Parquet, Kraken export) into the warehouse.",
    "bootstrap": "Backfill candle history (resumes where it stopped).",
    "strategies": "Strategy versions: list, show, validate, register, deploy, rollback, promote, "
                  "cancel, run, check.",
    "backtest": "Backtest a strategy version (exact or fast engine) over files or the warehouse.",
    "optimize": "Sweep a parameter grid (fast engine), best first, with a walk-forward split.",
    "simulate": "Run the whole trading loop offline on a simulated clock (resumable).",
    "halt": "Halt new entries (exits and stops still pass) until `resume`.",
    "resume": "Clear halts and the kill switch; current equity becomes the new peak.",
    "kill": "Kill switch: cancel entries, close every position, stay halted.",
    "backup": "Snapshot the warehouse now (sha256, retention); prints path and checksum.",
    "restore": "Replace the warehouse by a verified snapshot (refused while `up` runs).",
    "evolve": "Run the nightly evolution cycle now (decision, candidate, gates).",
    "thoughts": "Recent evolution cycles, or one cycle's conversation role by role.",
    "predictions": "The evolution advisor's predictions, open and graded.",
    "strategy-document": "The strategy document of the weekly reflection (--version N).",
    "candidates": "Candidate slots and their shadow paper tests' progress.",
    "evolution": "Evolution record: `evolution scorecard` (every promotion and its review).",
    "telegram": "Answer Telegram commands (needs TELEGRAM_BOT_TOKEN); run beside `up`.",
    "api": "Serve the read-only data API on 127.0.0.1 (needs TRADING_BRAIN_API_TOKEN).",
    "report": "Write a day's (or --week's) report with charts to var/reports/ (--open).",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, HELP.get(n, "")) for n in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="TRADING_BRAIN_HOME",
              help="Home directory holding trading_brain.toml and var/ (default: current "
                   "directory).")
@click.version_option(package_name="trading-brain")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Trading Brain: an autonomous, self-evolving spot-crypto trading system."""
    ctx.obj = {"home": home}


def main() -> None:
    """Console entry point: one-line errors for expected failures."""
    try:
        # without standalone mode, click returns the code of ctx.exit(code) instead of exiting
        code = cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except TradingBrainError as e:  # multi-line findings (e.g. the static gate) on one line
        from trading_brain.adapters.sandbox.text import safe_text  # no terminal escapes

        click.echo("error: " + " | ".join(
            p.strip() for p in safe_text(str(e)).splitlines() if p.strip()), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
